"""Non-Gaussianity of first-layer pre-activations, and the cavity score of each weight: pure functions.

- Redman et al. Fig. 4B: `kurtosis`, `class_kurtosis`, `mean_class_kurtosis`, `non_gaussianity`;
- Redman et al. Fig. 5: `cavity_scores`, the change of a unit's non-Gaussianity when one weight
  is removed (its |W| control, matched pairs, is in ``imprf_utils.notebooks.cavity``).

Moments are computed in float64 (docs/CONTRACTS.md for the input conventions).
"""

from __future__ import annotations

import torch

__all__ = ["kurtosis", "class_kurtosis", "mean_class_kurtosis", "non_gaussianity", "cavity_scores"]

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
