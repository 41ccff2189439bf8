"""Masks: layer-wise magnitude pruning, random masks of the same density, removal rounds.

IMP (Frankle & Carbin; Pellegrini & Biroli): train, remove ``prune_rate`` of each hidden
layer's *remaining* weights with the smallest |w| (each layer its own threshold; the output
layer is never pruned), rewind the survivors to their values at ``rewind_step``, retrain.
After k rounds a fraction ``(1 - prune_rate)**k`` of each layer is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def prune_count(remaining: int, rate: float) -> int:
    """Weights removed from a layer with ``remaining`` survivors (torch.nn.utils.prune's rounding)."""
    return int(round(rate * remaining))


def magnitude_masks(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], rate: float) -> list[torch.Tensor]:
    """Prune ``rate`` of each layer's remaining weights by |w|; (out, in) tensors in, new bool masks out.

    Within a layer the ``round(rate * remaining)`` surviving weights of smallest magnitude
    are removed; already-pruned weights stay pruned.
    """
    if not 0.0 < rate < 1.0:
        raise ValueError(f"prune rate {rate}: must lie strictly between 0 and 1")
    keep = [int(m.sum()) - prune_count(int(m.sum()), rate) for m in masks]
    return top_magnitude_masks(weights, keep, masks)


def top_magnitude_masks(
    weights: Sequence[torch.Tensor], keep: Sequence[int], masks: Sequence[torch.Tensor] | None = None
) -> list[torch.Tensor]:
    """Keep the ``keep[l]`` largest-|w| weights of layer l (among those ``masks`` allow, if given).

    Oneshot pruning calls this on the dense weights with IMP's per-layer counts.
    """
    new_masks = []
    for layer, (w, n) in enumerate(zip(weights, keep, strict=True)):
        score = w.detach().abs()
        if masks is not None:
            score = score.masked_fill(~masks[layer], -1.0)
        kept = torch.zeros(w.numel(), dtype=torch.bool, device=w.device)
        kept[score.flatten().topk(n).indices] = True
        new_masks.append(kept.view_as(w))
    return new_masks


def random_masks(masks: Sequence[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """Masks keeping, in each layer, as many weights as ``masks`` do, at uniformly random positions."""
    out = []
    for m in masks:
        order = torch.randperm(m.numel(), generator=generator, device="cpu").to(m.device)
        kept = torch.zeros(m.numel(), dtype=torch.bool, device=m.device)
        kept[order[: int(m.sum())]] = True
        out.append(kept.view_as(m))
    return out


def kept_fraction(masks: Sequence[torch.Tensor]) -> float:
    """Fraction of prunable weights kept, over all hidden layers."""
    return sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)


def removal_round(masks_by_level: Sequence[torch.Tensor]) -> torch.Tensor:
    """For each weight, the IMP round that removed it (survivors of every round: ``rounds + 1``).

    ``masks_by_level[k]`` is one layer's mask after k rounds (level 0: dense, all True).
    Returns int64 of the mask's shape: k for a weight pruned in round k (present at level
    k-1, absent at level k), and ``rounds + 1`` for the weights that survive every round.
    """
    stacked = torch.stack([m.bool() for m in masks_by_level])  # (levels, ...)
    levels = stacked.shape[0]
    alive_levels = stacked.long().sum(0)  # weights pruned in round k were alive at levels 0..k-1
    if not torch.equal(stacked.long().cumprod(0).sum(0), alive_levels):
        raise ValueError("masks_by_level are not nested: a pruned weight came back")
    return torch.where(alive_levels == levels, torch.full_like(alive_levels, levels), alive_levels)
