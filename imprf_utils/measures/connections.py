"""Pellegrini & Biroli's diagnostics of the masks: where a unit's connections sit, and how many it keeps.

`locality_maps` and `near_pair_fraction` (pairs of a unit's surviving inputs by displacement),
`connections_per_unit` and `binomial_null` (connections per unit against random placement).
Pure functions, tensors in, tensors out; the conventions of `imprf_utils.measures.shape`.
"""

from __future__ import annotations

import numpy as np
import scipy.stats
import torch

from imprf_utils.measures.shape import ImageShape, channel_masks

__all__ = ["locality_maps", "near_pair_fraction", "connections_per_unit", "binomial_null"]


def locality_maps(
    mask: torch.Tensor, image_shape: ImageShape, *, periodic: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pellegrini & Biroli's locality maps S_sc(d), S_dc(d), summed over units.

    mask (units, C*H*W) → (S_sc, S_dc), each (2H−1, 2W−1) int64, index (H−1, W−1) =
    zero displacement, index (H−1+dy, W−1+dx) = displacement d = (dy, dx) =
    (y_b − y_a, x_b − x_a). S_sc(d) counts ordered pairs (a, b) of distinct surviving
    inputs of one unit in the same channel, S_dc(d) those in different channels; both
    are symmetric, S_sc(0) = 0, and their total is Σ_units n(n − 1) for n surviving
    inputs. Locality = mass concentrated near d = 0.

    ``periodic`` (images on an H×W torus, like the synthetic tasks): each displacement is
    the shortest one, per axis dy → dy − H if dy > H/2 and dy + H if dy < −H/2 (a tie
    |dy| = H/2 keeps its sign, so the maps stay symmetric); pixels at x = 0 and x = W − 1
    are then 1 px apart, and only |dy| ≤ H/2, |dx| ≤ W/2 are non-zero.
    Not periodic (photographs, ImageNet32, CIFAR-10): the plain difference, |dy| ≤ H − 1.

    Computed as autocorrelations by FFT on a (2H−1, 2W−1) zero-padded grid (no
    wrap-around): with m_c the unit's channel-c mask and F its transform,
    same channel = Σ_c |F_c|², all channel pairs = |Σ_c F_c|²; minus the n self-pairs at d = 0;
    on a torus the plain map's entries are then added onto their shortest displacements.
    """
    _, h, w = image_shape
    per_channel = channel_masks(mask, image_shape).to(torch.float64)
    size = (2 * h - 1, 2 * w - 1)
    spectra = torch.fft.rfft2(per_channel, s=size)  # (units, C, 2H−1, W)
    same = spectra.abs().square().sum(dim=(0, 1))
    every = spectra.sum(dim=1).abs().square().sum(dim=0)
    shift = (h - 1, w - 1)
    same_map = torch.fft.fftshift(torch.fft.irfft2(same, s=size), dim=(0, 1))
    every_map = torch.fft.fftshift(torch.fft.irfft2(every, s=size), dim=(0, 1))
    s_same = same_map.round().to(torch.int64)
    s_diff = (every_map - same_map).round().to(torch.int64)
    s_same[shift] -= int(per_channel.sum())  # self-pairs (a, a)
    if periodic:
        return _wrap_displacements(s_same), _wrap_displacements(s_diff)
    return s_same, s_diff


def _wrap_displacements(pair_map: torch.Tensor) -> torch.Tensor:
    """A (2H−1, 2W−1) displacement map with each entry moved to its shortest displacement on
    the H×W torus: per axis d → d − L if d > L/2, d + L if d < −L/2 (L = H or W)."""
    rows, cols = pair_map.shape
    h, w = (rows + 1) // 2, (cols + 1) // 2

    def wrapped_index(length: int) -> torch.Tensor:
        d = torch.arange(2 * length - 1, device=pair_map.device) - (length - 1)
        d = torch.where(2 * d > length, d - length, torch.where(2 * d < -length, d + length, d))
        return d + (length - 1)

    index = wrapped_index(h)[:, None] * cols + wrapped_index(w)[None, :]
    wrapped = torch.zeros(rows * cols, dtype=pair_map.dtype, device=pair_map.device)
    wrapped.index_add_(0, index.reshape(-1), pair_map.reshape(-1))
    return wrapped.reshape(rows, cols)


def near_pair_fraction(pair_map: torch.Tensor, radius: float) -> float:
    """Share of a locality map's pairs whose displacement |d| is at most ``radius`` pixels.

    pair_map: (2H−1, 2W−1) counts as from `locality_maps` (centre = d = 0), e.g. S_sc + S_dc.
    Locality = a large share near 0; compare with the same masks at random positions
    (`shuffle_positions`), which gives the share that chance placement has.
    """
    rows, cols = pair_map.shape
    dy = torch.arange(rows) - rows // 2
    dx = torch.arange(cols) - cols // 2
    near = dy[:, None] ** 2 + dx[None, :] ** 2 <= radius**2
    total = pair_map.sum()
    return float(pair_map[near].sum() / total) if total > 0 else float("nan")


def connections_per_unit(mask: torch.Tensor) -> torch.Tensor:
    """Number of surviving connections of each unit: mask (units, inputs) → (units,) int64."""
    return mask.to(torch.bool).sum(dim=1)


def binomial_null(num_connections: int, units: int, inputs: int) -> torch.Tensor:
    """Expected histogram of connections per unit if `num_connections` were placed at random.

    Each of the units × inputs possible connections survives independently with
    p = num_connections / (units · inputs), so a unit's count is Binomial(inputs, p)
    and the expected number of units with k connections is units · C(inputs, k) p^k
    (1 − p)^(inputs − k). Returns (inputs + 1,) float64, entry k. Compare with
    `torch.bincount(connections_per_unit(mask), minlength=inputs + 1)`
    (Pellegrini & Biroli's diagnostic: pruning leaves many more empty and many more
    highly connected units than chance).
    """
    if not 0 <= num_connections <= units * inputs:
        raise ValueError(
            f"binomial_null: num_connections={num_connections} must lie in "
            f"[0, units*inputs = {units * inputs}]"
        )
    p = num_connections / (units * inputs)
    pmf = scipy.stats.binom.pmf(np.arange(inputs + 1), inputs, p)
    return torch.from_numpy(units * pmf)
