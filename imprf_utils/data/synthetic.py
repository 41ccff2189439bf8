"""Synthetic images generated on the fly: Ingrosso & Goldt's NLGP and the skewed-texture task.

The images are pure functions of a torch.Generator; `nlgp_dataset` and
`skewed_texture_dataset` turn them into the ``nlgp`` and ``skewed_texture`` datasets of
`imprf_utils.data.load_dataset`.

Both start from a stationary Gaussian field z on an L×L grid whose covariance is separable,
C = C1 ⊗ C1 (pixel index i*L + j), with the squared-exponential 1-D correlation

    C1_ij = exp(-d_ij² / ξ²),   d_ij = |i - j|, or min(|i - j|, L - |i - j|) on a torus.

On a torus this C1 is not positive definite for ξ ≳ L/8 (e.g. ξ = 3, 4 at L = 16), so its
negative eigenvalues are clipped at 0, 1e-3·I is added (as in Ingrosso & Goldt's code) and the
result is rescaled to unit diagonal. With A1 A1ᵀ = C1 (Cholesky, computed once per (L, ξ)),
z = A1 G A1ᵀ for G with i.i.d. N(0, 1) entries has Cov(z_ij, z_kl) = C1_ik C1_jl: the D×D
covariance is never formed.

References: Ingrosso & Goldt, "Data-driven emergence of convolutional structure in neural
networks", PNAS 2022 (NLGP); the skewed-texture task is the suite's own (why it is built
so: docs/default_task.md): classes share one covariance and differ in a global
template and in the sign of a local third-order statistic, so a Gaussian clone keeps only
the template.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from imprf_utils.data.dataset import DEFAULT_SIZE, Dataset, balanced_labels, split_generator
from imprf_utils.errors import ConfigError

NUGGET = 1e-3
"""Added to the diagonal of C1 before it is rescaled to unit diagonal (Ingrosso & Goldt)."""


def field_correlation_1d(size: int, xi: float, *, periodic: bool = True) -> np.ndarray:
    """The 1-D correlation C1 (size, size), float64: PSD, unit diagonal.

    C1 = normalize(clip_psd(exp(-d²/ξ²)) + 1e-3·I), with d the (minimum-image when periodic)
    distance and normalize(M)_ij = M_ij / sqrt(M_ii M_jj).
    """
    i = np.arange(size)
    d = np.abs(i[:, None] - i[None, :])
    if periodic:
        d = np.minimum(d, size - d)
    c = np.exp(-((d / xi) ** 2))
    eigenvalues, eigenvectors = np.linalg.eigh(c)
    c = (eigenvectors * np.clip(eigenvalues, 0.0, None)) @ eigenvectors.T
    c = c + NUGGET * np.eye(size)
    scale = np.sqrt(np.diag(c))
    return c / np.outer(scale, scale)


def field_correlation(size: int, xi: float, *, periodic: bool = True) -> torch.Tensor:
    """The 2-D correlation C = C1 ⊗ C1 of the Gaussian field, (size², size²) float64."""
    c1 = torch.from_numpy(field_correlation_1d(size, xi, periodic=periodic))
    return torch.kron(c1, c1)


@functools.lru_cache(maxsize=64)
def _field_factor(size: int, xi: float, periodic: bool) -> torch.Tensor:
    """Cholesky factor A1 of C1 (A1 A1ᵀ = C1), float32 on the CPU; computed once per (L, ξ)."""
    c1 = field_correlation_1d(size, xi, periodic=periodic)
    return torch.from_numpy(np.linalg.cholesky(c1)).float()


def gaussian_field(
    n: int, *, size: int, xi: float, periodic: bool = True, generator: torch.Generator
) -> torch.Tensor:
    """n samples of the zero-mean, unit-variance field z ~ N(0, C1 ⊗ C1): (n, size, size) float32.

    z = A1 G A1ᵀ with G ~ N(0, I) of shape (n, L, L): O(n·L³) work, no (L², L²) matrix.
    Drawn on `generator.device`.
    """
    a1 = _field_factor(size, float(xi), periodic).to(generator.device)
    g = torch.randn(n, size, size, generator=generator, device=generator.device)
    return a1 @ g @ a1.T


def nlgp_gamma(gain: float) -> float:
    """γ = (2/π) arcsin(g² / (1 + g²)) = Var(erf(g z / √2)) for z ~ N(0, 1)."""
    return 2.0 / math.pi * math.asin(gain**2 / (1.0 + gain**2))


def nlgp_images(
    n: int,
    *,
    size: int = 16,
    xi: float,
    gain: float,
    periodic: bool = True,
    generator: torch.Generator,
) -> torch.Tensor:
    """Nonlinear Gaussian process images (Ingrosso & Goldt 2022): (n, 1, size, size) float32.

    x = erf(g z / √2) / √γ with z the Gaussian field above (correlation length ξ) and
    γ = nlgp_gamma(g), so every pixel has zero mean and unit variance. Small gain g gives
    nearly Gaussian images, large g nearly binary ones with sharp edges. Their covariance is
    `nlgp_covariance`. Deterministic given the state of `generator`.
    """
    z = gaussian_field(n, size=size, xi=xi, periodic=periodic, generator=generator)
    x = torch.erf(z * (gain / math.sqrt(2.0))) / math.sqrt(nlgp_gamma(gain))
    return x.unsqueeze(1)


def nlgp_covariance(size: int, *, xi: float, gain: float, periodic: bool = True) -> torch.Tensor:
    """Exact covariance of `nlgp_images`, (size², size²) float64.

    Cov(x_p, x_q) = (2 / (π γ)) arcsin(g² C_pq / (1 + g²)), C = C1 ⊗ C1 (Ingrosso & Goldt).
    """
    c = field_correlation(size, xi, periodic=periodic)
    return 2.0 / (math.pi * nlgp_gamma(gain)) * torch.asin(gain**2 / (1.0 + gain**2) * c)


def nlgp_moments(
    *, xi: float | tuple[float, ...] = (1.0, 2.0, 3.0, 4.0), gain: float | tuple[float, ...] = 10.0,
    size: int = 16, periodic: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact class means (C, size²), all zero, and covariances (C, size², size²) of `nlgp_dataset`, float64."""
    xis, gains = nlgp_classes(xi, gain)
    covariances = torch.stack([nlgp_covariance(size, xi=x, gain=g, periodic=periodic) for x, g in zip(xis, gains)])
    return torch.zeros(len(xis), size * size, dtype=torch.float64), covariances


SKEWED_TEXTURE_CLASSES = ("rows, skew +", "columns, skew +", "rows, skew -", "columns, skew -")
"""Class c: template T_(c mod 2) (T0 varies along rows, T1 along columns), skew sign + for c < 2."""


def texture_templates(size: int = 16) -> torch.Tensor:
    """The two class templates, (2, size, size) float32, each of unit mean square.

    T0[i, j] = √2 cos(2π i / L) (varies along rows i), T1[i, j] = √2 cos(2π j / L).
    """
    wave = math.sqrt(2.0) * torch.cos(2 * math.pi * torch.arange(size, dtype=torch.float64) / size)
    t0 = wave[:, None].expand(size, size)
    return torch.stack([t0, t0.T]).float()


def _lognormal_texture(z: torch.Tensor, sigma: float) -> torch.Tensor:
    """LN(z) = (e^{σz} - e^{σ²/2}) / sqrt((e^{σ²} - 1) e^{σ²}).

    For z ~ N(0, 1): zero mean, unit variance, positive skewness (a standardized log-normal).
    """
    norm = math.sqrt(math.expm1(sigma**2) * math.exp(sigma**2))
    return (torch.exp(sigma * z) - math.exp(sigma**2 / 2)) / norm


def skewed_texture_images(
    labels: torch.Tensor,
    *,
    size: int = 16,
    sigma: float = 1.0,
    amplitude: float = 0.25,
    xi: float = 2.0,
    generator: torch.Generator,
) -> torch.Tensor:
    """Images of the skewed-texture task for the given class labels (0..3): (n, 1, size, size).

    x = a·T_(c mod 2) + s_c·LN(z), s_c = +1 for c < 2 and -1 otherwise, z the periodic Gaussian
    field of correlation length ξ, LN the standardized log-normal map (σ = skew strength).
    Classes c and c + 2 have the same mean and covariance (`skewed_texture_moments`) and differ
    only in the sign of the texture's skewness. Drawn on `generator.device`.
    """
    if labels.numel() and not (0 <= int(labels.min()) and int(labels.max()) <= 3):
        raise ValueError("skewed_texture_images: labels must lie in 0..3")
    labels = labels.to(generator.device)
    z = gaussian_field(len(labels), size=size, xi=xi, periodic=True, generator=generator)
    sign = 1.0 - 2.0 * (labels >= 2).float()
    templates = texture_templates(size).to(generator.device)[labels % 2]
    x = amplitude * templates + sign[:, None, None] * _lognormal_texture(z, sigma)
    return x.unsqueeze(1)


def skewed_texture_moments(
    size: int = 16, *, sigma: float = 1.0, amplitude: float = 0.25, xi: float = 2.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact class means (4, size²) and shared covariance (size², size²) of the task, float64.

    mean_c = a·T_(c mod 2) (flattened), S = (e^{σ² C} - 1) / (e^{σ²} - 1) elementwise, with C
    the periodic field correlation (from E[e^{σ(z_p + z_q)}] = e^{σ²(1 + C_pq)}).
    """
    c = field_correlation(size, xi, periodic=True)
    cov = torch.expm1(sigma**2 * c) / math.expm1(sigma**2)
    templates = texture_templates(size).double().reshape(2, -1)
    means = amplitude * templates[torch.arange(4) % 2]
    return means, cov


# --------------------------------------------------------------------------- the tasks as datasets


def _per_class(value: float | tuple[float, ...], name: str) -> tuple[float, ...]:
    """A number or a sequence of positive numbers as a tuple of floats."""
    values = tuple(float(v) for v in value) if isinstance(value, (tuple, list)) else (float(value),)
    if not values or min(values) <= 0:
        raise ConfigError(f"nlgp: {name} must be positive, one number or one per class: {value!r}")
    return values


def nlgp_classes(
    xi: float | tuple[float, ...], gain: float | tuple[float, ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(ξ_c), (g_c) for each class c; a scalar is shared by all classes. Two or more classes."""
    xis, gains = _per_class(xi, "xi"), _per_class(gain, "gain")
    num_classes = max(len(xis), len(gains))
    if num_classes < 2 or {len(xis), len(gains)} - {1, num_classes}:
        raise ConfigError(
            f"nlgp needs two or more classes: give xi and/or gain as tuples of one length "
            f"(got xi={xi!r}, gain={gain!r})"
        )
    return xis * (num_classes // len(xis)), gains * (num_classes // len(gains))


def nlgp_dataset(
    split: str,
    seed: int,
    *,
    n: int | None = None,
    xi: float | tuple[float, ...] = (1.0, 2.0, 3.0, 4.0),
    gain: float | tuple[float, ...] = 10.0,
    size: int = 16,
    periodic: bool = True,
) -> Dataset:
    """The ``nlgp`` dataset: class c is `nlgp_images` with (ξ_c, g_c); a scalar xi or gain is
    shared by all classes. n defaults to DEFAULT_SIZE[split]."""
    xis, gains = nlgp_classes(xi, gain)
    num_classes = len(xis)
    generator = split_generator(seed, split)
    y = balanced_labels(DEFAULT_SIZE[split] if n is None else n, num_classes, generator)
    x = torch.empty(len(y), 1, size, size)
    for c in range(num_classes):
        index = (y == c).nonzero().squeeze(1)
        x[index] = nlgp_images(
            len(index), size=size, xi=xis[c], gain=gains[c], periodic=periodic, generator=generator
        )
    names = [f"xi={a:g}, gain={g:g}" for a, g in zip(xis, gains)]
    return Dataset(x, y, num_classes, "nlgp", class_names=names, periodic=periodic)


def skewed_texture_dataset(
    split: str,
    seed: int,
    *,
    n: int | None = None,
    sigma: float = 1.0,
    amplitude: float = 0.25,
    xi: float = 2.0,
    size: int = 16,
) -> Dataset:
    """The ``skewed_texture`` dataset: four classes, template T_(c mod 2) × sign of a log-normal
    texture (`skewed_texture_images`); periodic. n defaults to DEFAULT_SIZE[split]."""
    if sigma <= 0 or xi <= 0:
        raise ConfigError(f"skewed_texture: sigma and xi must be positive, got {sigma}, {xi}")
    generator = split_generator(seed, split)
    y = balanced_labels(DEFAULT_SIZE[split] if n is None else n, 4, generator)
    x = skewed_texture_images(
        y, size=size, sigma=sigma, amplitude=amplitude, xi=xi, generator=generator
    )
    return Dataset(
        x, y, 4, "skewed_texture", class_names=list(SKEWED_TEXTURE_CLASSES), periodic=True
    )
