"""How local a layer's masks are: receptive-field width and compactness against random placement, IPR.

Redman et al. Figs. 1, 3C, 4A and Ingrosso & Goldt: `rf_width`, `rf_width_ratio`,
`compactness`, `compactness_ratio`, `average_receptive_field`, `near_centre_share`, `ipr`;
and the count-matched control "same weights at random positions", `shuffle_positions`
(docs/controls.md). Pure functions, tensors in, tensors out.

Conventions (docs/CONTRACTS.md): a first-layer input index is c*H*W + y*W + x for an
image of shape (C, H, W); on `periodic` images spatial distances are minimum-image
distances on the H×W torus.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.ndimage
import scipy.sparse
import scipy.sparse.csgraph
import torch

__all__ = [
    "rf_width",
    "rf_width_ratio",
    "average_receptive_field",
    "near_centre_share",
    "shuffle_positions",
    "compactness",
    "compactness_ratio",
    "ipr",
]

ImageShape = tuple[int, int, int]


def channel_masks(mask: torch.Tensor, image_shape: ImageShape) -> torch.Tensor:
    """(units, C*H*W) mask → (units, C, H, W) bool, in the flatten order c*H*W + y*W + x."""
    c, h, w = image_shape
    if mask.ndim != 2 or mask.shape[1] != c * h * w:
        raise ValueError(
            f"expected a mask of shape (units, C*H*W) = (units, {c * h * w}) for image "
            f"shape {tuple(image_shape)}; got {tuple(mask.shape)}"
        )
    return mask.reshape(-1, c, h, w).to(torch.bool)


def _pixels(mask: torch.Tensor, image_shape: ImageShape) -> torch.Tensor:
    """Surviving pixels with channels collapsed: (units, C*H*W) → (units, H, W) bool."""
    return channel_masks(mask, image_shape).any(dim=1)


def _squared_distance_1d(length: int, periodic: bool, device: torch.device) -> torch.Tensor:
    """(length, length) float64 matrix of squared 1-D distances, minimum-image if periodic."""
    pos = torch.arange(length, dtype=torch.float64, device=device)
    d = (pos[:, None] - pos[None, :]).abs()
    if periodic:
        d = torch.minimum(d, length - d)
    return d.square()


def rf_width(
    mask: torch.Tensor,
    image_shape: ImageShape,
    *,
    min_weights: int = 3,
    periodic: bool = False,
) -> torch.Tensor:
    """Receptive-field width: radius of gyration, in pixels, of each unit's surviving pixels.

    mask (units, C*H*W) → (units,) float64. Channels are collapsed: a pixel counts
    once if any of its channels survives. With n surviving pixels p_a,

        RG² = (1/n) Σ_a |p_a − p̄|² = (1/(2n²)) Σ_{a,b} d(a, b)²,

    computed in the pairwise form, which also defines it on the torus: with
    periodic=True, d is the minimum-image distance (per axis min(|Δ|, L − |Δ|)); for a
    set spanning less than half the period along each axis this is the ordinary RG of
    the set unwrapped. d² = Δy² + Δx² separates, so the sum only needs each unit's
    row and column occupancy counts. NaN for units with fewer than `min_weights`
    surviving pixels. The paper's exact width formula is unknown (docs/papers.md): this
    is the suite's definition (Redman et al. Figs. 3C, 4A).
    """
    pixels = _pixels(mask, image_shape).to(torch.float64)
    rows, cols = pixels.sum(dim=2), pixels.sum(dim=1)  # (units, H), (units, W)
    n = rows.sum(dim=1)
    _, h, w = image_shape
    pair_sum = ((rows @ _squared_distance_1d(h, periodic, rows.device)) * rows).sum(1)
    pair_sum += ((cols @ _squared_distance_1d(w, periodic, cols.device)) * cols).sum(1)
    width = (pair_sum / (2 * n.square())).sqrt()
    return width.masked_fill(n < max(min_weights, 1), float("nan"))


def average_receptive_field(
    mask: torch.Tensor,
    image_shape: ImageShape,
    *,
    min_weights: int = 3,
    periodic: bool = False,
) -> torch.Tensor:
    """The average receptive field: units' surviving pixels aligned on their centres, averaged over units.

    mask (units, C*H*W) → (2H − 1, 2W − 1) float64; entry (H − 1 + dy, W − 1 + dx) is the share of
    units (those with at least `min_weights` surviving pixels, channels collapsed) that keep the
    pixel at offset (dy, dx) from their centre. A unit's centre is the pixel c minimizing
    Σ_a d(p_a, c)² over its surviving pixels p_a (per axis, as d² separates): its centre of mass,
    rounded, and on the torus (`periodic`) the minimum-image one, offsets then wrapped into
    [−⌊L/2⌋, L − ⌊L/2⌋ − 1]. Local masks show a peak at the centre; random masks a low, flat field.
    The entries sum to the mean number of surviving pixels. Fig. 1's summary panel.
    """
    pixels = _pixels(mask, image_shape)
    _, h, w = image_shape
    kept = pixels[pixels.flatten(1).sum(1) >= max(min_weights, 1)]
    canvas = torch.zeros(2 * h - 1, 2 * w - 1, dtype=torch.float64, device=mask.device)
    if len(kept) == 0:
        return canvas
    counts = kept.to(torch.float64)
    centre_y = (counts.sum(2) @ _squared_distance_1d(h, periodic, mask.device)).argmin(1)  # (units,)
    centre_x = (counts.sum(1) @ _squared_distance_1d(w, periodic, mask.device)).argmin(1)
    unit, y, x = kept.nonzero(as_tuple=True)
    dy, dx = y - centre_y[unit], x - centre_x[unit]
    if periodic:
        dy, dx = (dy + h // 2) % h - h // 2, (dx + w // 2) % w - w // 2
    canvas.index_put_((dy + h - 1, dx + w - 1), torch.ones_like(dy, dtype=torch.float64), accumulate=True)
    return canvas / len(kept)


def near_centre_share(field: torch.Tensor, radius: int = 2) -> float:
    """The share of an `average_receptive_field`'s mass within ``radius`` pixels (per axis) of its centre:
    of the pixels a unit keeps, the fraction at most ``radius`` rows and columns from its centre."""
    cy, cx = field.shape[0] // 2, field.shape[1] // 2
    near = field[max(cy - radius, 0) : cy + radius + 1, max(cx - radius, 0) : cx + radius + 1].sum()
    return float(near / field.sum()) if field.sum() > 0 else float("nan")


def shuffle_positions(values: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Permute each row independently: the control "same weights at random positions".

    values (units, D) — a mask or a weight matrix — → the same shape and dtype, each
    row a uniformly random permutation of itself, so every unit keeps its number of
    surviving weights and their values. Used for the random-placement widths and
    compactness, and for the kurtosis control (docs/controls.md). `generator` must live
    on the device of `values`.
    """
    keys = torch.rand(values.shape, generator=generator, device=values.device)
    return torch.gather(values, 1, keys.argsort(dim=1))

def _one_channel(mask: torch.Tensor, image_shape: ImageShape) -> tuple[torch.Tensor, ImageShape]:
    """The surviving pixels (channels collapsed) as a one-channel mask (units, H*W), and its image shape (1, H, W)."""
    return _pixels(mask, image_shape).flatten(1), (1, image_shape[1], image_shape[2])


def _over_random_placement(
    pixels: torch.Tensor, measure: Callable[[torch.Tensor], torch.Tensor], *, num_shuffles: int, seed: int
) -> torch.Tensor:
    """``measure(pixels)`` ÷ its mean over ``num_shuffles`` random placements of every unit's pixels.

    The count-matched control of `rf_width_ratio` and `compactness_ratio`: each placement is
    `shuffle_positions` of the one-channel mask ``pixels`` (every unit keeps its number of
    surviving pixels), drawn in turn from one generator seeded with ``seed``.
    """
    generator = torch.Generator(device=pixels.device).manual_seed(seed)
    random = torch.stack([measure(shuffle_positions(pixels, generator)) for _ in range(num_shuffles)])
    return measure(pixels) / random.mean(dim=0)


def rf_width_ratio(
    mask: torch.Tensor,
    image_shape: ImageShape,
    *,
    min_weights: int = 3,
    periodic: bool = False,
    num_shuffles: int = 5,
    seed: int = 0,
) -> float:
    """Median RF width of the masks ÷ median width of the same pixel counts at random.

    The "RG ratio" (docs/controls.md): 1 = no localization, < 1 = local. The control
    shuffles each unit's *collapsed* pixel mask (`shuffle_positions` on (units, H*W)),
    so every unit keeps its number of surviving pixels; its median width is averaged
    over `num_shuffles` shuffles drawn from `seed`. Medians are over units with at
    least `min_weights` surviving pixels (the same units in both); NaN if none.
    """
    pixels, shape = _one_channel(mask, image_shape)

    def median_width(p: torch.Tensor) -> torch.Tensor:
        return torch.nanmedian(rf_width(p, shape, min_weights=min_weights, periodic=periodic))

    return float(_over_random_placement(pixels, median_width, num_shuffles=num_shuffles, seed=seed))


def _largest_components(pixels: np.ndarray, periodic: bool) -> np.ndarray:
    """Size of the largest 4-connected component of each (H, W) slice of `pixels`."""
    units, h, w = pixels.shape
    # One labelling call for all units: the structure connects within a slice only.
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = scipy.ndimage.generate_binary_structure(2, 1)
    labels, count = scipy.ndimage.label(pixels, structure=structure)
    if periodic:
        # Merge components that touch across the wrap (axes longer than 2 only:
        # shorter ones have no extra neighbours on the torus).
        pairs = []
        if h > 2:
            pairs.append((labels[:, 0, :], labels[:, -1, :]))
        if w > 2:
            pairs.append((labels[:, :, 0], labels[:, :, -1]))
        edges = [(p[(p > 0) & (q > 0)], q[(p > 0) & (q > 0)]) for p, q in pairs]
        if edges:
            src = np.concatenate([e[0] for e in edges])
            dst = np.concatenate([e[1] for e in edges])
            graph = scipy.sparse.coo_matrix(
                (np.ones(src.size), (src, dst)), shape=(count + 1, count + 1)
            )
            _, merged = scipy.sparse.csgraph.connected_components(graph, directed=False)
            labels = np.where(labels > 0, merged[labels] + 1, 0)
            count = int(labels.max(initial=0))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0  # background
    return sizes[labels].reshape(units, -1).max(axis=1, initial=0)


def _has_neighbour(pixels: torch.Tensor, periodic: bool) -> torch.Tensor:
    """Whether each pixel of (units, H, W) is surviving and has a surviving 4-neighbour."""
    p = pixels
    found = torch.zeros_like(p)
    found[:, 1:, :] |= p[:, :-1, :]
    found[:, :-1, :] |= p[:, 1:, :]
    found[:, :, 1:] |= p[:, :, :-1]
    found[:, :, :-1] |= p[:, :, 1:]
    # On the torus the border rows / columns are neighbours too (for axes longer than
    # 2: with length 2 they already are, with length 1 a pixel is not its own neighbour).
    if periodic and p.shape[1] > 2:
        found[:, 0, :] |= p[:, -1, :]
        found[:, -1, :] |= p[:, 0, :]
    if periodic and p.shape[2] > 2:
        found[:, :, 0] |= p[:, :, -1]
        found[:, :, -1] |= p[:, :, 0]
    return found & p


def compactness(
    mask: torch.Tensor, image_shape: ImageShape, *, periodic: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blob-likeness of each unit's surviving pixels (channels collapsed).

    mask (units, C*H*W) → (largest_component_share, neighbour_share), each (units,)
    float64: the size of the largest 4-connected component of the surviving pixels ÷
    their number n, and the share of surviving pixels with a surviving 4-neighbour.
    A solid blob gives (1, 1), n isolated pixels (1/n, 0). With periodic=True the grid
    is a torus: components and neighbours wrap. NaN for units with no surviving pixel.
    RG alone does not tell a blob from a few scattered adjacent pairs (docs/controls.md);
    compare with `compactness_ratio` against random placement.
    """
    pixels = _pixels(mask, image_shape)
    n = pixels.sum(dim=(1, 2)).to(torch.float64)
    largest = torch.from_numpy(_largest_components(pixels.cpu().numpy(), periodic))
    largest_share = largest.to(device=n.device, dtype=torch.float64) / n
    neighbour_share = _has_neighbour(pixels, periodic).sum(dim=(1, 2)).to(torch.float64) / n
    empty = n == 0
    return largest_share.masked_fill(empty, float("nan")), neighbour_share.masked_fill(
        empty, float("nan")
    )


def compactness_ratio(
    mask: torch.Tensor,
    image_shape: ImageShape,
    *,
    min_weights: int = 3,
    periodic: bool = False,
    num_shuffles: int = 5,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean compactness of the masks ÷ mean compactness of random placement.

    Both shares of `compactness`, averaged over units with at least `min_weights`
    surviving pixels, each divided by its mean over `num_shuffles` random placements
    of every unit's pixels (same count, `shuffle_positions` of the collapsed pixel
    mask, drawn from `seed`). > 1 = more blob-like than chance (docs/controls.md).
    """
    pixels, shape = _one_channel(mask, image_shape)
    keep = pixels.sum(dim=1) >= max(min_weights, 1)

    def means(p: torch.Tensor) -> torch.Tensor:
        return torch.stack([s[keep].mean() for s in compactness(p, shape, periodic=periodic)])

    ratio = _over_random_placement(pixels, means, num_shuffles=num_shuffles, seed=seed)
    return float(ratio[0]), float(ratio[1])


def ipr(w: torch.Tensor) -> torch.Tensor:
    """Inverse participation ratio of each row: Σ_j w_j⁴ / (Σ_j w_j²)² → (units,) float64.

    1 for a one-hot row, 1/D for a uniform row of length D, ≈ 3/D for a Gaussian
    random row (Ingrosso & Goldt's localization measure; Redman et al. Fig. 2). Pass
    masked weights W ⊙ M. NaN for all-zero rows.
    """
    w2 = w.to(torch.float64).square()
    return w2.square().sum(dim=1) / w2.sum(dim=1).square()
