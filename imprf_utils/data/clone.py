"""Gaussian clone of a dataset: same class means and covariances, nothing beyond them.

The primary paper's ImageNet32-GP control (Redman et al. 2024, Fig. 3): if IMP finds local
receptive fields on the data but not on its clone, the non-Gaussian statistics are what it
uses. The clone of class c is N(μ_c, Σ_c) with the class's sample mean and covariance.

With the centred class samples X_c (n_c × D), x = μ_c + X_cᵀ z / sqrt(n_c − 1),
z ~ N(0, I_{n_c}), has mean μ_c and covariance X_cᵀ X_c / (n_c − 1) = Σ_c exactly. No D × D
matrix is formed or factored, so it works as well for n_c < D (Σ_c singular) and for pixels
that never vary; a sample costs O(n_c·D).

A sample covariance carries sampling noise, and a clone drawn from it carries the same noise
in every image: a network can learn it. `gaussian_clone_from_moments` draws instead from
moments known exactly (a generated task's); `data.clone_splits` chooses between the two.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from imprf_utils.data.dataset import Dataset
from imprf_utils.errors import ConfigError


def gaussian_clone(
    ds: Dataset, *, seed: int = 0, chunk_size: int = 1024, statistics: Dataset | None = None
) -> Dataset:
    """A dataset with the same N, shape, labels (same order) and dtype as `ds`, drawn per class
    from the Gaussian with the class's sample mean and covariance.

    statistics: take each class's mean and covariance from this dataset's samples instead of
    `ds`'s (a test set's clone drawn from the training classes: a test set of 10 images per
    class would otherwise give a rank-9 covariance).

    Computed in float32 on ds.x's device with a torch.Generator seeded by `seed`
    (deterministic per seed and device). Output samples are made `chunk_size` at a time,
    so the extra memory for a class of n_c samples is (chunk_size + D)·n_c floats. uint8
    images are rounded and clamped to 0..255 (which slightly shrinks the variance of
    saturated pixels). The name gets "-clone"; mean, class_names and periodic are kept.
    """
    if chunk_size < 1:
        raise ConfigError(f"gaussian_clone: chunk_size must be positive, got {chunk_size}")
    source = ds if statistics is None else statistics
    if source.x.shape[1:] != ds.x.shape[1:] or source.num_classes != ds.num_classes:
        raise ConfigError(
            f"gaussian_clone: statistics {source.name!r} has images {tuple(source.x.shape[1:])} and "
            f"{source.num_classes} classes, the dataset {tuple(ds.x.shape[1:])} and {ds.num_classes}"
        )
    device = ds.x.device
    generator = torch.Generator(device=device).manual_seed(seed)
    flat = ds.x.reshape(len(ds), -1)
    source_flat = source.x.reshape(len(source), -1).to(device)
    source_y = source.y.to(device)
    out = torch.empty_like(flat)
    for c in range(ds.num_classes):
        index = (ds.y == c).nonzero().squeeze(1)
        if len(index) == 0:
            continue
        samples = source_flat[source_y == c].float()
        n_c = len(samples)
        if n_c < 2:
            raise ConfigError(
                f"gaussian_clone: class {c} has {n_c} sample(s) in {source.name!r}; a covariance needs two or more"
            )
        mu = samples.mean(0)
        factor = (samples - mu) / math.sqrt(n_c - 1)  # X_c / sqrt(n_c - 1)
        for start in range(0, len(index), chunk_size):
            rows = index[start : start + chunk_size]
            z = torch.randn(len(rows), n_c, generator=generator, device=device)
            out[rows] = _cast(torch.addmm(mu, z, factor), ds.x.dtype)
    return replace(ds, x=out.reshape(ds.x.shape), y=ds.y.clone(), name=f"{ds.name}-clone")


def gaussian_clone_from_moments(
    ds: Dataset, means: torch.Tensor, covariances: torch.Tensor, *, seed: int = 0, chunk_size: int = 1024
) -> Dataset:
    """A dataset like `ds` (N, shape, labels in order, dtype) drawn per class c from N(μ_c, Σ_c).

    ``means``: (C, D); ``covariances``: (C, D, D), or (D, D) shared by every class; D the
    pixels of an image. x = μ_c + L_c z with L_c = V √Λ from Σ_c = V Λ Vᵀ (float64 eigh,
    eigenvalues below 0 from rounding set to 0), z ~ N(0, I_D) from a torch.Generator
    seeded by ``seed`` on ds.x's device, ``chunk_size`` images at a time. The name gets
    "-clone"; mean, class_names and periodic are kept.
    """
    flat = ds.x.reshape(len(ds), -1)
    d = flat.shape[1]
    if means.shape != (ds.num_classes, d) or covariances.shape[-2:] != (d, d):
        raise ConfigError(
            f"gaussian_clone_from_moments: means {tuple(means.shape)} and covariances {tuple(covariances.shape)} "
            f"do not fit {ds.num_classes} classes of {d} pixels"
        )
    device = ds.x.device
    generator = torch.Generator(device=device).manual_seed(seed)
    out = torch.empty_like(flat)
    for c in range(ds.num_classes):
        index = (ds.y == c).nonzero().squeeze(1)
        covariance = covariances if covariances.ndim == 2 else covariances[c]
        eigenvalues, vectors = torch.linalg.eigh(covariance.double())
        factor = (vectors * eigenvalues.clamp(min=0).sqrt()).T.float().to(device)  # (D, D): z @ factor ~ N(0, Σ_c)
        mu = means[c].float().to(device)
        for start in range(0, len(index), chunk_size):
            rows = index[start : start + chunk_size]
            z = torch.randn(len(rows), d, generator=generator, device=device)
            out[rows] = _cast(torch.addmm(mu, z, factor), ds.x.dtype)
    return replace(ds, x=out.reshape(ds.x.shape), y=ds.y.clone(), name=f"{ds.name}-clone")


def _cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """float32 samples to the dataset's dtype; uint8 by rounding and clamping to 0..255."""
    if dtype == torch.uint8:
        return x.round_().clamp_(0, 255).to(torch.uint8)
    return x.to(dtype)


def gaussian_probe_accuracy(
    train_x: torch.Tensor,
    train_labels: torch.Tensor,
    test_x: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    components: int = 64,
    reg_param: float = 0.01,
) -> float:
    """Test accuracy of a Gaussian class-covariance classifier: what a clone's classes can tell apart.

    The images (n, ...) are flattened and projected on the training images' top ``components``
    principal components; a quadratic discriminant (one Gaussian per class, covariances shrunk
    by ``reg_param`` towards the identity: scikit-learn's QuadraticDiscriminantAnalysis) is fitted
    on the training projections and scored on the test ones. It sees means and covariances only,
    so on two classes whose first two moments agree it scores 1/2 whatever else differs.
    """
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

    train, test = (x.reshape(len(x), -1).double().numpy() for x in (train_x, test_x))
    pca = PCA(components, random_state=0).fit(train)
    classifier = QuadraticDiscriminantAnalysis(reg_param=reg_param).fit(pca.transform(train), train_labels.numpy())
    return float(classifier.score(pca.transform(test), test_labels.numpy()))
