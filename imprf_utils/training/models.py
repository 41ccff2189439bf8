"""The masked fully connected network, K replicas stacked.

Pellegrini & Biroli's FCN: each layer applies BatchNorm to its *input* (optional here),
then a Linear map, then ReLU (no ReLU after the output layer). Weights are Glorot-normal,
biases zero. Every hidden layer's weight matrix carries a boolean mask M, and the weights
it removes are exactly 0: `set_masks` and `load_state_dict` zero them, and training keeps
them 0 (the weight gradient is masked: `masked_linear`). So the layer uses W itself, which
is W ⊙ M bit for bit, and no step forms W ⊙ M. The output layer is never pruned.

K replicas (seeds, or masks of one round) are stored as stacked tensors ``(K, out, in)``
and train in one step; how each layer's products are split between one batched matmul
and one matmul per replica is `bmm_replicas`'s choice. Either gives each replica the bits
it gets alone. A model with K = 1 is the ordinary single network.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

BN_MOMENTUM = 0.01  # running statistics decay 0.99, as in Pellegrini & Biroli's code
BN_EPS = 1e-3
CPU_BMM_MAX_MACS = 2**25
"""Largest per-replica product (multiply-adds) that `bmm_replicas` batches on the CPU."""


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
            # M in the weights' dtype for the weight gradient (bool would be converted every step);
            # not part of the state, renewed with the mask by `_apply_masks`.
            self.register_buffer(f"gradient_mask{layer}", torch.ones(k, o, i), persistent=False)
        if batchnorm:
            self.bn_weights = nn.ParameterList(nn.Parameter(torch.ones(k, i)) for i, _ in pairs)
            self.bn_biases = nn.ParameterList(nn.Parameter(torch.zeros(k, i)) for i, _ in pairs)
            for layer, (i, _) in enumerate(pairs):
                self.register_buffer(f"running_mean{layer}", torch.zeros(k, i))
                self.register_buffer(f"running_var{layer}", torch.ones(k, i))
        self.register_load_state_dict_post_hook(lambda module, _: module._apply_masks())
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
        """Install masks (each broadcast to ``(K, out, in)``) and zero the weights they remove."""
        for layer, mask in enumerate(masks):
            buf = getattr(self, f"mask{layer}")
            buf.copy_(mask.expand_as(buf))
        self._apply_masks()

    @torch.no_grad()
    def _apply_masks(self) -> None:
        """Zero the pruned weights and renew the gradient masks: after `set_masks` and `load_state_dict`
        (masks change only through them). Weights already 0 where pruned keep their bits."""
        for layer, mask in enumerate(self.masks):
            self.weights[layer].mul_(mask)
            getattr(self, f"gradient_mask{layer}").copy_(mask)

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

        Kurtosis and cavity scores are computed on ``W @ layer_input`` (the pre-activations "as
        the layer sees x", docs/papers.md). Call in eval mode so running statistics are used.
        Nothing past ``layer`` is computed.
        """
        if not 0 <= layer < len(self.weights):
            raise ValueError(f"layer {layer}: the network has layers 0..{len(self.weights) - 1}")
        return next(itertools.islice(self._layer_inputs(x), layer, None))

    def _layer_inputs(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """Each layer's input as its Linear map sees it, layer by layer: the one forward path
        (`forward` applies the output layer to the last, `layer_input` stops at its layer)."""
        x = self._as_replicas(x)
        last = len(self.weights) - 1
        for layer in range(last + 1):
            if self.batchnorm:
                x = self._normalize(x, layer)
            yield x
            if layer < last:
                x = torch.relu_(self._linear(x, layer))

    def _as_replicas(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x.unsqueeze(0).expand(self.replicas, -1, -1)
        return x

    def _linear(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """x (K, B, in) -> x Wᵀ + b = x (W ⊙ M)ᵀ + b, (K, B, out); the output layer has no mask (`masked_linear`).

        Under autocast (precision "bf16") the layer runs in the autocast dtype, as
        autocast's own matmuls do; the casts hand float32 gradients back to the weights.
        """
        weight, bias = self.weights[layer], self.biases[layer]
        mask = getattr(self, f"gradient_mask{layer}") if layer < len(self.weights) - 1 else None
        batched = bmm_replicas(self.replicas, x.device, x.shape[1] * weight.shape[1] * weight.shape[2])
        device = x.device.type
        if not torch.is_autocast_enabled(device):
            return masked_linear(x, weight, bias, mask, batched)
        dtype = torch.get_autocast_dtype(device)
        with torch.autocast(device, enabled=False):
            mask = None if mask is None else mask.to(dtype)
            return masked_linear(x.to(dtype), weight.to(dtype), bias.to(dtype), mask, batched)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, D) shared by all replicas, or (K, B, D) -> logits (K, B, C)."""
        *_, last_input = self._layer_inputs(x)
        return self._linear(last_input, len(self.weights) - 1)


def bmm_replicas(replicas: int, device: torch.device, macs: int) -> int:
    """How many of the K replicas (the first ones) one batched matmul takes; one matmul each takes the rest.

    ``macs``: multiply-adds of one replica's product (B x in x out). All on a GPU. On the
    CPU, ``bmm`` runs each replica's product on one thread, in rounds of as many replicas
    as threads, while ``mm`` spreads one product over all threads; that costs a small
    product more than it costs a large one. So products of at most ``CPU_BMM_MAX_MACS``
    go to ``bmm`` in whole rounds, the remainder (K mod threads, and all of K = 1) to
    ``mm``; larger products all to ``mm``. Measured on 2 (shared) cores: for the default
    FCN (256 wide, batch 256) the split beat all-``mm`` at each K tried from 2 to 7 and at
    K = 10 (1.2-1.4x there); for the paper FCN (3072-1024-1024-1024, batch 1000, BatchNorm)
    at K = 3, all-``mm`` was as fast as the old per-replica code and bmm was not.
    """
    if device.type != "cpu":
        return replicas
    if macs > CPU_BMM_MAX_MACS:
        return 0
    return replicas - replicas % torch.get_num_threads()


class _MaskedLinear(torch.autograd.Function):
    """Per replica k, with W_k = 0 where M_k = 0: y_k = x_k W_kᵀ + b_k; backward dx_k = g_k W_k,
    dW_k = (g_kᵀ x_k) ⊙ M_k, db_k = Σ_b g_k."""

    @staticmethod
    def forward(ctx, x, weight, bias, mask, batched):  # noqa: ANN001, ANN205 (autograd's signature)
        ctx.save_for_backward(x, weight)
        ctx.mask, ctx.batched = mask, batched
        out = x.new_empty(x.shape[0], x.shape[1], weight.shape[1])
        if batched:
            torch.baddbmm(bias[:batched].unsqueeze(1), x[:batched], weight[:batched].transpose(1, 2), out=out[:batched])
        for k in range(batched, x.shape[0]):
            torch.addmm(bias[k], x[k], weight[k].t(), out=out[k])
        return out

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = _products(grad, weight, ctx.batched)
        if ctx.needs_input_grad[1]:
            grad_weight = _products(grad.transpose(1, 2), x, ctx.batched)
            if ctx.mask is not None:
                grad_weight.mul_(ctx.mask)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum(1)
        return grad_x, grad_weight, grad_bias, None, None


def _products(a: torch.Tensor, b: torch.Tensor, batched: int) -> torch.Tensor:
    """a_k @ b_k for every k, (K, n, m) @ (K, m, p) -> (K, n, p): one bmm for k < batched, one mm for each other k."""
    out = a.new_empty(a.shape[0], a.shape[1], b.shape[2])
    if batched:
        torch.bmm(a[:batched], b[:batched], out=out[:batched])
    for k in range(batched, a.shape[0]):
        torch.mm(a[k], b[k], out=out[k])
    return out


def masked_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, mask: torch.Tensor | None, batched: int
) -> torch.Tensor:
    """x (K, B, in) -> y (K, B, out), y_k = x_k W_kᵀ + b_k; ``mask``: float (K, out, in), or None.

    ``weight`` must be 0 wherever ``mask`` is 0 (`MaskedFCN` keeps it so): then W is W ⊙ M bit
    for bit, and the gradients are autograd's for ``x @ (W * M).transpose(1, 2) + b`` without
    forming W ⊙ M; the weight gradient is masked in place, dW_k = (g_kᵀ x_k) ⊙ M_k, which keeps
    the pruned weights at 0 under SGD. No per-replica copies. The first
    ``batched`` replicas' products are one ``baddbmm``/``bmm``, the others' one
    ``addmm``/``mm`` each: the same bits per replica (the CPU BLAS runs the same
    single-matrix kernel either way; tests/test_train.py).
    """
    return _MaskedLinear.apply(x, weight, bias, mask, batched)


def replica_state(state: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Replica k of a stacked state dict, keeping a leading axis of 1."""
    return {name: t[k : k + 1].clone() for name, t in state.items()}


def stack_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate single- or multi-replica state dicts along the replica axis."""
    return {name: torch.cat([s[name] for s in states]) for name in states[0]}


def split_masks(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A `MaskedFCN` state dict as (its masks ``mask{layer}``, every other entry), each in the state's order."""
    masks = {name: t for name, t in state.items() if name.startswith("mask")}
    return masks, {name: t for name, t in state.items() if not name.startswith("mask")}


def first_replica_masks(masks: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The first replica's mask of each hidden layer, in layer order, from a state dict of masks (`split_masks`)."""
    return [masks[f"mask{layer}"][0] for layer in range(len(masks))]


def reset_batchnorm_statistics(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with BatchNorm's running statistics reset in place (means 0, variances 1): a rewound
    network gathers them afresh (Pellegrini & Biroli); a state without BatchNorm is returned as it is."""
    for name in state:
        if name.startswith("running_mean"):
            state[name].zero_()
        elif name.startswith("running_var"):
            state[name].fill_(1.0)
    return state
