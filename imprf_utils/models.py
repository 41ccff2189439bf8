"""The masked fully connected network, K replicas stacked.

Pellegrini & Biroli's FCN: each layer applies BatchNorm to its *input* (optional here),
then a Linear map, then ReLU (no ReLU after the output layer). Weights are Glorot-normal,
biases zero. Every hidden layer's weight matrix carries a boolean mask applied as
``W * M`` in the forward pass; the output layer is never pruned.

K replicas (seeds, or masks of one round) are stored as stacked tensors ``(K, out, in)``
and run with batched matmuls, so they train in one step. A model with K = 1 is the
ordinary single network.
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

    def _linear(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        w = self.weights[layer]
        if layer < len(self.weights) - 1:
            w = w * getattr(self, f"mask{layer}")
        return torch.baddbmm(self.biases[layer].unsqueeze(1), x, w.transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, D) shared by all replicas, or (K, B, D) -> logits (K, B, C)."""
        x = self._as_replicas(x)
        last = len(self.weights) - 1
        for layer in range(last + 1):
            if self.batchnorm:
                x = self._normalize(x, layer)
            x = self._linear(x, layer)
            if layer < last:
                x = torch.relu(x)
        return x


def replica_state(state: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Replica k of a stacked state dict, keeping a leading axis of 1."""
    return {name: t[k : k + 1].clone() for name, t in state.items()}


def stack_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate single- or multi-replica state dicts along the replica axis."""
    return {name: torch.cat([s[name] for s in states]) for name in states[0]}
