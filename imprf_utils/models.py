"""The masked fully connected network, K replicas stacked.

Pellegrini & Biroli's FCN: each layer applies BatchNorm to its *input* (optional here),
then a Linear map, then ReLU (no ReLU after the output layer). Weights are Glorot-normal,
biases zero. Every hidden layer's weight matrix carries a boolean mask applied as
``W * M`` in the forward pass; the output layer is never pruned.

K replicas (seeds, or masks of one round) are stored as stacked tensors ``(K, out, in)``
and train in one step: with batched matmuls on a GPU, with one matmul per replica on the
CPU (where ``bmm`` gives each replica's product a single thread; see
`_forward_per_replica`). A model with K = 1 is the ordinary single network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

BN_MOMENTUM = 0.01  # running statistics decay 0.99, as in Pellegrini & Biroli's code
BN_EPS = 1e-3


class MaskedFCN(nn.Module):
    """``widths = (D, h1, ..., hL, C)``; ``seeds`` fixes each replica's initialization."""

    def __init__(self, widths: Sequence[int], *, seeds: Sequence[int] = (0,), batchnorm: bool = False):
        super().__init__()
        if len(widths) < 3:
            raise ValueError(f"widths {tuple(widths)}: need input, at least one hidden layer, and output")
        self.widths = tuple(int(w) for w in widths)
        self.batchnorm = batchnorm
        k = len(seeds)
        pairs = list(zip(self.widths[:-1], self.widths[1:]))
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(k, o, i)) for i, o in pairs)
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(k, o)) for _, o in pairs)
        for layer, (i, o) in enumerate(pairs[:-1]):
            self.register_buffer(f"mask{layer}", torch.ones(k, o, i, dtype=torch.bool))
        if batchnorm:
            self.bn_weights = nn.ParameterList(nn.Parameter(torch.ones(k, i)) for i, _ in pairs)
            self.bn_biases = nn.ParameterList(nn.Parameter(torch.zeros(k, i)) for i, _ in pairs)
            for layer, (i, _) in enumerate(pairs):
                self.register_buffer(f"running_mean{layer}", torch.zeros(k, i))
                self.register_buffer(f"running_var{layer}", torch.ones(k, i))
        self._float_masks: dict[int, tuple[tuple, torch.Tensor]] = {}
        self.reset_parameters(seeds)

    @property
    def replicas(self) -> int:
        return self.weights[0].shape[0]

    @property
    def masks(self) -> list[torch.Tensor]:
        """Masks of the prunable (hidden) layers, each ``(K, out, in)`` bool."""
        return [getattr(self, f"mask{layer}") for layer in range(len(self.weights) - 1)]

    @torch.no_grad()
    def reset_parameters(self, seeds: Sequence[int]) -> None:
        """Glorot-normal weights, std = sqrt(2 / (fan_in + fan_out)), per replica seed."""
        for k, seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(int(seed))
            for w in self.weights:
                _, fan_out, fan_in = w.shape
                std = (2.0 / (fan_in + fan_out)) ** 0.5
                w[k].copy_(torch.randn(fan_out, fan_in, generator=gen) * std)

    @torch.no_grad()
    def set_masks(self, masks: Sequence[torch.Tensor]) -> None:
        """Install masks and zero the pruned weights, so that every saved state has them at 0."""
        for layer, mask in enumerate(masks):
            buf = getattr(self, f"mask{layer}")
            buf.copy_(mask.expand_as(buf))
            self.weights[layer].mul_(buf)

    def _normalize(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """BatchNorm of a layer's input, per replica: x (K, B, D)."""
        k, b, d = x.shape
        flat = x.transpose(0, 1).reshape(b, k * d)
        out = F.batch_norm(
            flat,
            getattr(self, f"running_mean{layer}").view(-1),
            getattr(self, f"running_var{layer}").view(-1),
            self.bn_weights[layer].view(-1),
            self.bn_biases[layer].view(-1),
            training=self.training,
            momentum=BN_MOMENTUM,
            eps=BN_EPS,
        )
        return out.view(b, k, d).transpose(0, 1)

    def layer_input(self, x: torch.Tensor, layer: int = 0) -> torch.Tensor:
        """What the Linear map of ``layer`` sees: the input after BatchNorm (if any), (K, B, in).

        Kurtosis and cavity scores are computed on ``W @ layer_input`` (DESIGN.md: "as the
        layer sees x"). Call in eval mode so running statistics are used.
        """
        x = self._as_replicas(x)
        for current in range(layer + 1):
            if self.batchnorm:
                x = self._normalize(x, current)
            if current == layer:
                return x
            x = torch.relu(self._linear(x, current))
        raise AssertionError("unreachable")

    def _as_replicas(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x.unsqueeze(0).expand(self.replicas, -1, -1)
        return x

    def _float_mask(self, layer: int) -> torch.Tensor:
        """The mask of ``layer`` in the weights' dtype, converted once per change of the mask.

        ``W * M`` with a bool M converts M to float in the forward and again in the backward
        (on the CPU as a full copy); with a float M the pair runs 1.9x faster (1024x3072 layer).
        The cached copy is keyed on the mask's storage and version counter, so `set_masks`,
        `load_state_dict`, `.to()` or any in-place edit of the buffer renews it.
        """
        mask = getattr(self, f"mask{layer}")
        dtype = self.weights[layer].dtype
        if torch.is_inference(mask):  # inference tensors keep no version counter
            return mask.to(dtype)
        key = (mask.data_ptr(), mask.device, mask._version, dtype)
        cached = self._float_masks.get(layer)
        if cached is None or cached[0] != key:
            cached = (key, mask.to(dtype))
            self._float_masks[layer] = cached
        return cached[1]

    def _masked_weight(self, layer: int) -> torch.Tensor:
        """W * M of a hidden layer, W of the output layer: (K, out, in)."""
        w = self.weights[layer]
        return w * self._float_mask(layer) if layer < len(self.weights) - 1 else w

    def _linear(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """x (K, B, in) -> x (W * M)ᵀ + b, (K, B, out), as one batched matmul."""
        return torch.baddbmm(self.biases[layer].unsqueeze(1), x, self._masked_weight(layer).transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, D) shared by all replicas, or (K, B, D) -> logits (K, B, C)."""
        x = self._as_replicas(x)
        if x.device.type == "cpu":
            return self._forward_per_replica(x)
        last = len(self.weights) - 1
        for layer in range(last + 1):
            if self.batchnorm:
                x = self._normalize(x, layer)
            x = self._linear(x, layer)
            if layer < last:
                x = torch.relu(x)
        return x

    def _forward_per_replica(self, x: torch.Tensor) -> torch.Tensor:
        """The CPU forward: one 2-D matmul per replica and layer, replicas stacked only at the logits.

        On the CPU, bmm gives each replica's product a single thread: per-replica matmuls train
        the paper FCN 1.2x (K = 1) and 1.5x (K = 3) faster on 2 cores (benchmarks/README.md).
        Every parameter is split once into per-replica views (`_per_replica`), so the backward
        makes at most one gradient copy per parameter, and no activations are copied between
        layers. Same arithmetic as the batched path: BatchNorm per replica updates views of
        the running-statistics buffers.
        """
        last = len(self.weights) - 1
        weights = [_per_replica(self._masked_weight(layer)) for layer in range(last + 1)]
        biases = [_per_replica(b) for b in self.biases]
        if self.batchnorm:
            norms = [
                [
                    _per_replica(t)
                    for t in (getattr(self, f"running_mean{layer}"), getattr(self, f"running_var{layer}"),
                              self.bn_weights[layer], self.bn_biases[layer])
                ]
                for layer in range(last + 1)
            ]
        logits = []
        for k, h in enumerate(_per_replica(x)):
            for layer in range(last + 1):
                if self.batchnorm:
                    mean, var, gamma, beta = (t[k] for t in norms[layer])
                    h = F.batch_norm(
                        h, mean, var, gamma, beta, training=self.training, momentum=BN_MOMENTUM, eps=BN_EPS
                    )
                h = torch.addmm(biases[layer][k], h, weights[layer][k].t())
                if layer < last:
                    h = torch.relu(h)
            logits.append(h)
        return logits[0].unsqueeze(0) if len(logits) == 1 else torch.stack(logits)


def _per_replica(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-replica views of a stacked (K, ...) tensor: unbind; for K = 1 squeeze (no copy in the backward)."""
    return (t.squeeze(0),) if t.shape[0] == 1 else t.unbind(0)


def replica_state(state: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Replica k of a stacked state dict, keeping a leading axis of 1."""
    return {name: t[k : k + 1].clone() for name, t in state.items()}


def stack_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate single- or multi-replica state dicts along the replica axis."""
    return {name: torch.cat([s[name] for s in states]) for name in states[0]}
