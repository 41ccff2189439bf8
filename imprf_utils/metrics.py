"""The measures of the suite: pure functions, tensors in, tensors out.

Every figure-level claim of the papers rests on one of these:

- non-Gaussianity of first-layer pre-activations (Redman et al. Fig. 4B):
  `kurtosis`, `class_kurtosis`, `mean_class_kurtosis`, `non_gaussianity`;
- the cavity score of each weight (Redman et al. Fig. 5): `cavity_scores` (its |W|
  control, matched pairs, is in `cavity_analysis`);
- localization of the masks (Redman et al. Figs. 1, 3C, 4A; Ingrosso & Goldt):
  `rf_width`, `rf_width_ratio`, `compactness`, `compactness_ratio`, `ipr`;
- Pellegrini & Biroli's diagnostics: `locality_maps`, `connections_per_unit`,
  `binomial_null`;
- the count-matched control "same weights at random positions": `shuffle_positions`.

Conventions (docs/CONTRACTS.md): a first-layer input index is c*H*W + y*W + x for an
image of shape (C, H, W); on `periodic` images spatial distances are minimum-image
distances on the H×W torus. Moments are computed in float64.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import scipy.sparse
import scipy.sparse.csgraph
import scipy.stats
import torch

__all__ = [
    "kurtosis",
    "class_kurtosis",
    "mean_class_kurtosis",
    "non_gaussianity",
    "cavity_scores",
    "rf_width",
    "rf_width_ratio",
    "shuffle_positions",
    "compactness",
    "compactness_ratio",
    "ipr",
    "locality_maps",
    "near_pair_fraction",
    "connections_per_unit",
    "binomial_null",
]

ImageShape = tuple[int, int, int]

# Rows of x handled at once by `cavity_scores`: bounds its memory to a few
# (rows × inputs) float64 blocks whatever N is.
_CAVITY_CHUNK_ROWS = 2048

# Removing a weight that carries (almost) all of a unit's variance leaves h' ≈ 0; the
# moment expansion then loses about log10(m2/m2') ** 2 digits, so such scores are NaN.
_CAVITY_MIN_VARIANCE_KEPT = 1e-6


# --------------------------------------------------------------------------------------
# Kurtosis and non-Gaussianity (Redman et al. Fig. 4B)
# --------------------------------------------------------------------------------------


def kurtosis(h: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Pearson kurtosis along `dim`: κ = E[(h − μ)⁴] / Var(h)², 3 for a Gaussian.

    Biased (population) moments, computed in float64, as
    ``scipy.stats.kurtosis(h, axis=dim, fisher=False, bias=True)``; NaN where the
    variance is zero (as SciPy: Var ≤ (1e-15·μ)²). Returns float64 with `dim` removed.
    """
    h = h.to(torch.float64)
    mean = h.mean(dim, keepdim=True)
    centred = h - mean
    m2 = centred.square().mean(dim)
    m4 = centred.square().square().mean(dim)
    kappa = m4 / m2.square()
    degenerate = m2 <= (torch.finfo(torch.float64).resolution * mean.squeeze(dim)).square()
    return kappa.masked_fill(degenerate, float("nan"))


def _class_rows(labels: torch.Tensor, num_classes: int | None) -> list[torch.Tensor]:
    """Row indices of each class 0..num_classes−1 (empty tensors for absent classes)."""
    labels = labels.reshape(-1).to(torch.int64)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.numel() else 0
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=num_classes)[:num_classes]
    return list(torch.split(order, counts.tolist()))


def class_kurtosis(
    h: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
) -> torch.Tensor:
    """Kurtosis of each unit's pre-activation within each class.

    h (N, units), labels (N,) in 0..num_classes−1 → (num_classes, units) float64,
    row c = `kurtosis(h[labels == c])`; NaN for classes with fewer than 2 samples.
    `num_classes` defaults to max(labels) + 1. Redman et al. Fig. 4B averages these.
    """
    per_class = [
        kurtosis(h[index], dim=0)
        if index.numel() >= 2
        else torch.full((h.shape[1],), float("nan"), dtype=torch.float64, device=h.device)
        for index in _class_rows(labels.to(h.device), num_classes)
    ]
    if not per_class:
        return torch.empty((0, h.shape[1]), dtype=torch.float64, device=h.device)
    return torch.stack(per_class)


def mean_class_kurtosis(
    h: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None
) -> torch.Tensor:
    """Per-unit mean over classes of the class kurtosis: (1/K) Σ_c κ_c(h_i) → (units,).

    Classes where κ is undefined (NaN) are left out of the mean. This is the quantity
    of Redman et al. Fig. 4B ("mean kurtosis of pre-activations, per class").
    """
    return torch.nanmean(class_kurtosis(h, labels, num_classes), dim=0)


def non_gaussianity(
    h: torch.Tensor, labels: torch.Tensor | None = None, num_classes: int | None = None
) -> torch.Tensor:
    """Distance of each unit's kurtosis from the Gaussian value: |κ(h_i) − 3| → (units,).

    With labels, the mean over classes of |κ_c(h_i) − 3| (NaN classes left out). This
    is the quantity whose change `cavity_scores` measures:
    cavity(W_ij) = non_gaussianity(h − W_ij x_j) − non_gaussianity(h).
    """
    if labels is None:
        return (kurtosis(h, dim=0) - 3).abs()
    return torch.nanmean((class_kurtosis(h, labels, num_classes) - 3).abs(), dim=0)


# --------------------------------------------------------------------------------------
# Cavity scores (Redman et al. Fig. 5)
# --------------------------------------------------------------------------------------


class _CavityExpansion:
    """Non-Gaussianity of h' = h − W_ij x_j for every weight at once (see `cavity_scores`).

    Holds the class-independent powers of W and four (out, in) work buffers, so that
    a call per class costs four matrix products and a dozen elementwise passes.
    """

    def __init__(self, weight: torch.Tensor) -> None:
        self.w = weight
        self.w2 = weight.square()
        self.w3 = self.w2 * weight
        self.w4 = self.w2.square()
        self.hx, self.h3x, self.h2x2, self.hx3 = (torch.empty_like(weight) for _ in range(4))

    def scores(
        self, x: torch.Tensor, rows: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cavity scores from rows `rows` of x (all if None), and where they are defined.

        Returns (scores, defined): (out, in) float64 (arbitrary where not defined; a view
        of a work buffer, overwritten by the next call) and (out, in) bool.
        """
        n = x.shape[0] if rows is None else rows.numel()
        f64 = dict(dtype=torch.float64, device=self.w.device)

        def blocks():
            for start in range(0, n, _CAVITY_CHUNK_ROWS):
                stop = min(start + _CAVITY_CHUNK_ROWS, n)
                yield (x[start:stop] if rows is None else x[rows[start:stop]]).to(**f64)

        # Pass 1: the mean of x (the mean of h = x Wᵀ is mean(x) Wᵀ).
        mean_x = sum(block.sum(0) for block in blocks()) / n
        # Pass 2: sums over rows of the centred h^a x^b (sums, not means: n cancels in κ
        # up to one factor, applied at the end).
        m2, m4 = (torch.zeros(self.w.shape[0], **f64) for _ in range(2))
        s2, s4 = (torch.zeros(self.w.shape[1], **f64) for _ in range(2))
        for k, block in enumerate(blocks()):
            xc = block - mean_x
            hc = xc @ self.w.T
            h2, xc2 = hc.square(), xc.square()
            m2 += h2.sum(0)
            m4 += h2.square().sum(0)
            s2 += xc2.sum(0)
            s4 += xc2.square().sum(0)
            beta = 0 if k == 0 else 1  # beta=0 overwrites the buffer, stale NaNs included
            self.hx.addmm_(hc.T, xc, beta=beta)
            self.h3x.addmm_((h2 * hc).T, xc, beta=beta)
            self.h2x2.addmm_(h2.T, xc2, beta=beta)
            self.hx3.addmm_(hc.T, xc2 * xc, beta=beta)

        # Σh'² = Σh² − 2w Σhx + w² Σx²
        # Σh'⁴ = Σh⁴ − 4w Σh³x + 6w² Σh²x² − 4w³ Σhx³ + w⁴ Σx⁴
        var_cut = torch.addcmul(m2[:, None], self.w2, s2).addcmul_(self.hx, self.w, value=-2)
        m4_cut = torch.addcmul(m4[:, None], self.w4, s4)
        m4_cut.addcmul_(self.h3x, self.w, value=-4).addcmul_(self.h2x2, self.w2, value=6)
        m4_cut.addcmul_(self.hx3, self.w3, value=-4)
        defined = (var_cut > _CAVITY_MIN_VARIANCE_KEPT * m2[:, None]) & (m2 > 0)[:, None]
        # |κ(h') − 3| − |κ(h) − 3| with κ = n Σh⁴ / (Σh²)²
        g_full = (n * m4 / m2.square() - 3).abs()
        g_cut = m4_cut.div_(var_cut.square_()).sub_(3 / n).abs_()
        return torch.add(-g_full[:, None], g_cut, alpha=n, out=self.hx), defined


def cavity_scores(
    weight: torch.Tensor,
    x: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cavity score of every weight of a layer (Redman et al. Fig. 5A):

        cavity(W_ij) = |κ(h_i − W_ij x_j) − 3| − |κ(h_i) − 3|,   h = x (W ⊙ mask)ᵀ,

    negative when removing W_ij makes unit i's pre-activation more Gaussian.

    weight (out, in) and x (N, in) as the layer sees it → (out, in) float64. A bias
    only shifts h and leaves κ unchanged, so none is taken. With `labels` (N,), the
    score is computed within each class (class-centred moments) and averaged over the
    classes where it is defined. Pruned entries (mask False) are NaN, and so are
    weights whose removal leaves less than 1e-6 of the unit's variance (e.g. a unit's
    last surviving weight), where κ(h') is undefined or numerically meaningless.

    Exact for all weights at once: with centred h and x,
    E[h'²] = E[h²] − 2w E[hx] + w² E[x²] and
    E[h'⁴] = E[h⁴] − 4w E[h³x] + 6w² E[h²x²] − 4w³ E[hx³] + w⁴ E[x⁴],
    where the E[h^a x^b] are (out, in) matrices (h^a)ᵀ(x^b)/N — four matrix products
    besides h itself, accumulated over chunks of rows so that memory does not grow
    with N. Float64 throughout.
    """
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"cavity_scores: need weight (out, in) and x (N, in) with the same `in`; "
            f"got weight {tuple(weight.shape)} and x {tuple(x.shape)} "
            "(flatten images to (N, C*H*W) first)"
        )
    w = weight.detach().to(torch.float64)
    if mask is not None:
        w = w * mask.to(device=w.device, dtype=torch.float64)
    x = x.detach().to(w.device)

    expansion = _CavityExpansion(w)
    if labels is None:
        scores, defined = expansion.scores(x, None)
        scores = scores.masked_fill(~defined, float("nan"))
    else:
        total = torch.zeros_like(w)
        classes_defined = torch.zeros_like(w)
        for rows in _class_rows(labels.to(w.device), None):
            if rows.numel() >= 2:
                class_scores, defined = expansion.scores(x, rows)
                total += torch.where(defined, class_scores, 0.0)
                classes_defined += defined
        scores = total.div_(classes_defined)  # 0/0 → NaN where no class defines a score
    if mask is not None:
        scores.masked_fill_(~mask.to(device=scores.device, dtype=torch.bool), float("nan"))
    return scores


# --------------------------------------------------------------------------------------
# Receptive-field shape (Redman et al. Figs. 1, 3C, 4A; Ingrosso & Goldt)
# --------------------------------------------------------------------------------------


def _per_channel(mask: torch.Tensor, image_shape: ImageShape) -> torch.Tensor:
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
    return _per_channel(mask, image_shape).any(dim=1)


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
    pixels = _pixels(mask, image_shape).flatten(1)  # a one-channel mask
    shape = (1, image_shape[1], image_shape[2])

    def median_width(p: torch.Tensor) -> torch.Tensor:
        return torch.nanmedian(rf_width(p, shape, min_weights=min_weights, periodic=periodic))

    generator = torch.Generator(device=pixels.device).manual_seed(seed)
    random = [median_width(shuffle_positions(pixels, generator)) for _ in range(num_shuffles)]
    observed = median_width(pixels)
    return float(observed / torch.stack(random).mean())


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
    pixels = _pixels(mask, image_shape).flatten(1)  # a one-channel mask
    shape = (1, image_shape[1], image_shape[2])
    keep = pixels.sum(dim=1) >= max(min_weights, 1)

    def means(p: torch.Tensor) -> torch.Tensor:
        return torch.stack([s[keep].mean() for s in compactness(p, shape, periodic=periodic)])

    generator = torch.Generator(device=pixels.device).manual_seed(seed)
    random = torch.stack([means(shuffle_positions(pixels, generator)) for _ in range(num_shuffles)])
    ratio = means(pixels) / random.mean(dim=0)
    return float(ratio[0]), float(ratio[1])


def ipr(w: torch.Tensor) -> torch.Tensor:
    """Inverse participation ratio of each row: Σ_j w_j⁴ / (Σ_j w_j²)² → (units,) float64.

    1 for a one-hot row, 1/D for a uniform row of length D, ≈ 3/D for a Gaussian
    random row (Ingrosso & Goldt's localization measure; Redman et al. Fig. 2). Pass
    masked weights W ⊙ M. NaN for all-zero rows.
    """
    w2 = w.to(torch.float64).square()
    return w2.square().sum(dim=1) / w2.sum(dim=1).square()


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
    per_channel = _per_channel(mask, image_shape).to(torch.float64)
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


# --------------------------------------------------------------------------------------
# Connection counts (Pellegrini & Biroli)
# --------------------------------------------------------------------------------------


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
