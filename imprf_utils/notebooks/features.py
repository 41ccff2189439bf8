"""Features of the inputs without pruning: ICA vs PCA (Redman et al. Fig. 2), and the dense
one-hidden-layer check of Ingrosso & Goldt as a thin wrapper of the suite's training loop.

- `pca_components`: the top eigenvectors of the pixel covariance — second-order
  statistics only. On stationary images (a torus) they are Fourier modes: periodic,
  spread over the whole image (Fig. 2B).
- `ica_components`: FastICA on the PCA-whitened top-k representation — "ICA on a
  lower-dimensional representation" (Fig. 2A). It seeks the directions of maximal
  non-Gaussianity; on images with local non-Gaussian structure they are localized, on
  Gaussian data every rotation of the whitened space is as good, so it finds none.
- `top_magnitude_pixels`, `localization`: how localized a set of feature vectors is, by
  the inverse participation ratio (Ingrosso & Goldt) and by the RF width of each vector's
  largest-|w| pixels against random placement (the suite's width, as for masks).
- `ica_vs_pca`: both kinds of components of each draw of several kinds of images (e.g.
  the data and its clone, one draw per seed), and their localization, as one table.
- `train_one_hidden_layer`: dense D → units → C networks on the data and its Gaussian
  clone (one draw for every seed, or each seed its own), one `train.train` call with one
  dataset per replica; their first-layer weights localize on non-Gaussian inputs and stay
  spread out on the clone (Ingrosso & Goldt, PNAS 2022).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning

from imprf_utils.data import Dataset
from imprf_utils.measures.shape import ImageShape, ipr, rf_width_ratio
from imprf_utils.training.device_data import DeviceData
from imprf_utils.training.models import MaskedFCN
from imprf_utils.training.train import train

__all__ = [
    "pca_components",
    "ica_components",
    "top_magnitude_pixels",
    "localization",
    "ica_vs_pca",
    "train_one_hidden_layer",
]


def _unit_rows(w: np.ndarray) -> torch.Tensor:
    """Rows scaled to unit norm, sign fixed so that the largest-|w| entry is positive."""
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    peak = np.abs(w).argmax(axis=1)
    w = w * np.sign(w[np.arange(len(w)), peak])[:, None]
    return torch.from_numpy(np.ascontiguousarray(w)).to(torch.float64)


def pca_components(x: torch.Tensor, n_components: int) -> torch.Tensor:
    """The ``n_components`` leading eigenvectors of the covariance of ``x``.

    x (N, D) → (n_components, D) float64, unit-norm rows in order of decreasing
    variance (sign: largest-|w| entry positive). Exact (a symmetric eigendecomposition
    of the D×D covariance, float64), so deterministic.
    """
    x = x.to(torch.float64)
    centred = x - x.mean(dim=0)
    cov = centred.T @ centred / (len(x) - 1)
    _, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues
    return _unit_rows(vectors.flip(1)[:, :n_components].T.numpy())


def ica_components(
    x: torch.Tensor,
    n_components: int,
    *,
    seed: int = 0,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """FastICA of ``x`` (N, D) on its PCA-whitened top-``n_components`` representation.

    sklearn's FastICA (logcosh contrast, parallel algorithm) with
    ``whiten="unit-variance"`` first projects the centred data on their top
    ``n_components`` principal components and whitens them, then finds the rotation of
    that space whose coordinates are most non-Gaussian. ``seed`` is its random_state
    (the initial rotation).

    Returns (filters, basis, converged): filters are the rows of the unmixing matrix in
    pixel space (``components_``), s = W x — what a first-layer unit's weights would
    be; basis vectors are the columns of the mixing matrix (``mixing_``), x ≈ A s — the
    image patterns the sources add. Both (n_components, D) float64, unit-norm rows, in
    the same order (sign: largest-|w| entry positive).
    """
    ica = FastICA(n_components=n_components, whiten="unit-variance", random_state=seed, max_iter=max_iter, tol=tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ica.fit(x.to(torch.float64).numpy())
    return _unit_rows(ica.components_), _unit_rows(ica.mixing_.T), bool(ica.n_iter_ < max_iter)


def top_magnitude_pixels(w: torch.Tensor, image_shape: ImageShape, count: int) -> torch.Tensor:
    """Bool mask (units, H*W) of each row's ``count`` pixels with the largest |w|.

    w (units, C*H*W); channels are collapsed first by the sum of squares over C, so a
    pixel's weight is the norm of its channels' weights. Ties are broken by position.
    """
    c, h, wd = image_shape
    per_pixel = w.to(torch.float64).reshape(len(w), c, h * wd).square().sum(dim=1)
    index = per_pixel.argsort(dim=1, descending=True, stable=True)[:, :count]
    return torch.zeros_like(per_pixel, dtype=torch.bool).scatter_(1, index, True)


def localization(
    w: torch.Tensor,
    image_shape: ImageShape,
    *,
    top_fraction: float = 0.1,
    periodic: bool = False,
    seed: int = 0,
) -> dict[str, float]:
    """Localization of feature vectors w (units, C*H*W), two ways.

    - ``ipr_d``: median over rows of IPR · D (the mean of the two middle values for an
      even count) (`measures.shape.ipr`; D = C*H*W), and
      ``ipr_d_max``. ≈ 3 for spread-out Gaussian-like vectors (Ingrosso & Goldt), 1.5–2.25
      for a Fourier mode, D for a one-hot vector.
    - ``rf_width_ratio``: the median RF width (`measures.shape.rf_width`, radius of gyration) of each
      row's top ``top_fraction`` of pixels by |w| ÷ that of the same number of pixels at
      random (`measures.shape.rf_width_ratio`, 5 shuffles from ``seed``); < 1 = local. Caveat:
      the largest values of a *smooth* spread-out vector also cluster (around its
      peaks), so this ratio falls below 1 for smooth non-local vectors too; IPR does not.
    """
    d = w[0].numel()
    values = ipr(w) * d
    count = max(3, round(top_fraction * image_shape[1] * image_shape[2]))
    pixels = top_magnitude_pixels(w, image_shape, count)
    ratio = rf_width_ratio(pixels, (1, image_shape[1], image_shape[2]), periodic=periodic, seed=seed)
    return {"ipr_d": float(values.quantile(0.5)), "ipr_d_max": float(values.max()), "rf_width_ratio": ratio}


def ica_vs_pca(
    samples: Mapping[str, Mapping[int, torch.Tensor]],
    image_shape: ImageShape,
    *,
    n_components: int,
    top_fraction: float = 0.1,
    periodic: bool = False,
    max_iter: int = 1000,
) -> tuple[pd.DataFrame, dict[tuple[str, str, int], torch.Tensor]]:
    """PCA and FastICA components of each data draw, and their `localization`.

    samples: name (e.g. "data", "clone") -> seed -> images (N, C*H*W) of that seed's draw, so
    that the spread over seeds is the spread over data draws (each seed its own generated
    images and clone), not only over FastICA's restarts on one set of images. Each draw gets
    its PCA (exact) and one FastICA fit with random_state = its seed, as filters and as basis
    vectors of that fit (``max_iter``: FastICA's iteration cap; on Gaussian data it never
    converges — there is no direction to converge to — and runs to the cap).

    Returns a table with one row per (data, method, seed) — columns data, method ("pca",
    "ica", "ica basis"), seed (int), ipr_d, ipr_d_max, rf_width_ratio, converged (True for
    PCA) — and the components under the key (data, method, seed).
    """
    rows, components = [], {}
    for name, draws in samples.items():
        for seed, x in draws.items():
            filters, basis, ica_converged = ica_components(x, n_components, seed=seed, max_iter=max_iter)
            fits = [("pca", pca_components(x, n_components), True), ("ica", filters, ica_converged),
                    ("ica basis", basis, ica_converged)]
            for method, w, converged in fits:
                components[(name, method, seed)] = w
                measures = localization(w, image_shape, top_fraction=top_fraction, periodic=periodic)
                rows.append({"data": name, "method": method, "seed": seed, **measures, "converged": converged})
    table = pd.DataFrame(rows)
    table["seed"] = table["seed"].astype("int64")
    return table, components


def train_one_hidden_layer(
    train_sets: Sequence[Dataset | Sequence[Dataset]],
    test_sets: Sequence[Dataset | Sequence[Dataset]],
    *,
    units: int,
    steps: int,
    lr: float,
    batch_size: int,
    seeds: Sequence[int] = (0,),
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense D → ``units`` → C ReLU networks, one per (kind of data, seed), trained together.

    Ingrosso & Goldt's check that the data carry a localizing non-Gaussian signal: the
    first-layer weights of a dense network trained on non-Gaussian images grow localized
    blobs (IPR · D ≫ 3); on the Gaussian clone they stay spread out (≈ 3). Pass one entry
    per kind of data (e.g. the data and its clone; same image shape and classes) in
    ``train_sets`` and the matching entry of test sets (all of one size) in ``test_sets``:
    either one Dataset that every seed's network reads, or one Dataset per seed (``seeds[k]``
    reads the entry's k-th: each seed its own data draw). One `train.train` run on
    `train.DeviceData.concat` of the distinct (training, test) pairs: replica s*K + k has the
    Glorot init and the batch seed ``seeds[k]`` and reads entry s, so the kinds' runs of one
    seed are paired (same init, same batch indices) and differ only in the images; each gets
    the bits it gets alone.

    Returns the first-layer weights (S, K, units, D) and the final test accuracy (S, K)
    on each replica's test set, on the CPU.
    """
    if len(test_sets) != len(train_sets):
        raise ValueError(f"{len(train_sets)} training sets but {len(test_sets)} test sets")
    s, k = len(train_sets), len(seeds)
    pairs = [pair for entry in zip(_per_seed(train_sets, k), _per_seed(test_sets, k)) for pair in zip(*entry)]
    distinct, replica_sets = _distinct_pairs(pairs)  # replica s*K + k reads pairs[s*K + k]
    train_data = DeviceData.concat([train_ds for train_ds, _ in distinct], device)
    test_data = DeviceData.concat([test_ds for _, test_ds in distinct], device, means=train_data.mean)
    first = distinct[0][0]
    model = MaskedFCN((train_data.x.shape[1], units, first.num_classes), seeds=list(seeds) * s).to(device)
    result = train(
        model, train_data, test_data, steps=steps, batch_size=batch_size, lr=lr, batch_seeds=list(seeds) * s,
        replica_sets=replica_sets, eval_every=steps, precision=precision,
        description=f"{first.name}: {s * k} one-hidden-layer nets",
    )
    return model.weights[0].detach().cpu().view(s, k, units, -1), result.test_accuracy[-1].view(s, k)


def _per_seed(sets: Sequence[Dataset | Sequence[Dataset]], k: int) -> list[list[Dataset]]:
    """Each entry of ``sets`` as one Dataset per seed: a Dataset k times, a sequence as is (of k)."""
    entries = [[entry] * k if isinstance(entry, Dataset) else list(entry) for entry in sets]
    for entry in entries:
        if len(entry) != k:
            raise ValueError(f"an entry of {len(entry)} datasets for {k} seeds: pass one Dataset, or one per seed")
    return entries


def _distinct_pairs(pairs: Sequence[tuple[Dataset, Dataset]]) -> tuple[list[tuple[Dataset, Dataset]], list[int]]:
    """The distinct (training, test) pairs, by identity, in order of first use, and the index of each
    pair among them: a set that every seed reads goes to the device once."""
    distinct: list[tuple[Dataset, Dataset]] = []
    index: dict[tuple[int, int], int] = {}
    for train_ds, test_ds in pairs:
        if (id(train_ds), id(test_ds)) not in index:
            index[(id(train_ds), id(test_ds))] = len(distinct)
            distinct.append((train_ds, test_ds))
    return distinct, [index[(id(train_ds), id(test_ds))] for train_ds, test_ds in pairs]
