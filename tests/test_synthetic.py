"""Tests of imprf_utils.data.synthetic (nlgp, skewed_texture) against analytic moments derived here."""

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from imprf_utils.data import synthetic
from imprf_utils.data import load_dataset
from imprf_utils.errors import ConfigError

from conftest import covariance_error


def oracle_correlation(size: int, xi: float) -> torch.Tensor:
    """C_pq = c1(di) c1(dj) on a torus, c1(d) = (exp(-d²/ξ²) + 1e-3 [d = 0]) / (1 + 1e-3).

    Equal to the module's PSD-projected recipe when exp(-d²/ξ²) is already positive definite
    (checked by the caller's choice of ξ ≤ 2 at L = 16).
    """
    i = torch.arange(size, dtype=torch.float64)
    d = (i[:, None] - i[None, :]).abs()
    d = torch.minimum(d, size - d)
    c1 = (torch.exp(-(d**2) / xi**2) + 1e-3 * (d == 0)) / (1 + 1e-3)
    assert torch.linalg.eigvalsh(torch.exp(-(d**2) / xi**2)).min() > 0
    return (c1[:, None, :, None] * c1[None, :, None, :]).reshape(size**2, size**2)


def oracle_templates(size: int) -> torch.Tensor:
    i = torch.arange(size, dtype=torch.float64)
    rows = math.sqrt(2) * torch.cos(2 * math.pi * i / size)[:, None].repeat(1, size)
    return torch.stack([rows, rows.T])


# --------------------------------------------------------------------------- NLGP


@pytest.mark.parametrize("gain", [0.5, 10.0])
def test_nlgp_pixels_have_zero_mean_and_unit_variance(gain):
    g = torch.Generator().manual_seed(0)
    x = synthetic.nlgp_images(20_000, size=16, xi=3.0, gain=gain, generator=g)
    assert x.dtype == torch.float32 and x.shape == (20_000, 1, 16, 16)
    x = x.reshape(20_000, -1).double()
    # standard errors of the per-pixel mean and variance, from the sample
    se_var = float(((x - x.mean(0)) ** 2).var(0).max().sqrt()) / math.sqrt(len(x))
    assert x.mean(0).abs().max() < 6 / math.sqrt(len(x))
    assert (x.var(0) - 1).abs().max() < 6 * se_var


@pytest.mark.parametrize("gain", [0.5, 10.0])
def test_nlgp_covariance_matches_arcsin_formula(gain):
    n, size, xi = 20_000, 16, 2.0
    g = torch.Generator().manual_seed(1)
    x = synthetic.nlgp_images(n, size=size, xi=xi, gain=gain, generator=g)
    gamma = 2 / math.pi * math.asin(gain**2 / (1 + gain**2))

    def arcsin_covariance(xi):
        return 2 / (math.pi * gamma) * torch.asin(gain**2 / (1 + gain**2) * oracle_correlation(size, xi))

    analytic = arcsin_covariance(xi)
    torch.testing.assert_close(synthetic.nlgp_covariance(size, xi=xi, gain=gain), analytic)
    error, noise = covariance_error(x, analytic)
    # ‖Ĉ − C‖_F concentrates at its expected size (error / noise = 1.00 ± 0.03 over seeds)
    assert error < 1.5 * noise
    assert covariance_error(x, arcsin_covariance(1.7))[0] > 3 * noise  # the test tells ξ = 2 from ξ = 1.7


def test_nlgp_long_correlation_is_projected_to_a_valid_covariance():
    # exp(-d²/ξ²) on a 16-torus is not PSD for ξ = 4; the sampler must still match its covariance
    c1 = synthetic.field_correlation_1d(16, 4.0, periodic=True)
    assert np.allclose(c1, c1.T) and np.allclose(np.diag(c1), 1)
    assert np.linalg.eigvalsh(c1).min() > 0
    x = synthetic.nlgp_images(20_000, xi=4.0, gain=10.0, generator=torch.Generator().manual_seed(2))
    error, noise = covariance_error(x, synthetic.nlgp_covariance(16, xi=4.0, gain=10.0))
    assert error < 1.5 * noise


def test_nlgp_dataset_is_balanced_deterministic_and_split():
    ds = load_dataset("nlgp", n=2_000)
    assert ds.x.shape == (2_000, 1, 16, 16) and ds.x.dtype == torch.float32
    assert ds.y.dtype == torch.int64 and torch.bincount(ds.y).tolist() == [500] * 4
    assert ds.num_classes == 4 and ds.name == "nlgp" and ds.periodic and ds.mean is None
    assert len(ds.class_names) == 4 and ds.image_shape == (1, 16, 16)
    assert not (ds.y[:50] == ds.y[0]).all()  # shuffled
    again = load_dataset("nlgp", n=2_000)
    assert torch.equal(ds.x, again.x) and torch.equal(ds.y, again.y)
    other_seed = load_dataset("nlgp", n=2_000, seed=1)
    test = load_dataset("nlgp", n=2_000, split="test")
    for other in (other_seed, test):
        assert not torch.isclose(ds.x, other.x).all(dim=(1, 2, 3)).any()  # no image in common
    assert len(load_dataset("nlgp", split="test")) == 10_000


def test_nlgp_classes_follow_xi_and_gain():
    ds = load_dataset("nlgp", n=8_000, xi=2.0, gain=(0.5, 10.0), size=8, periodic=False)
    assert ds.num_classes == 2 and not ds.periodic and ds.image_shape == (1, 8, 8)
    # oracle: kurtosis of erf(g z / √2), z ~ N(0, 1), by Gauss-Hermite quadrature (2.38 and 1.07)
    nodes, weights = np.polynomial.hermite_e.hermegauss(100)
    for c, gain in enumerate((0.5, 10.0)):
        f = scipy.special.erf(gain * nodes / math.sqrt(2))
        expected = (weights * f**4).sum() * weights.sum() / (weights * f**2).sum() ** 2
        pixels = ds.x[ds.y == c].reshape(-1, 64).numpy()
        assert abs(scipy.stats.kurtosis(pixels, axis=0, fisher=False).mean() - expected) < 0.1
    with pytest.raises(ConfigError, match="two or more classes"):
        load_dataset("nlgp", n=100, xi=2.0, gain=10.0)
    with pytest.raises(ConfigError, match="two or more classes"):
        load_dataset("nlgp", n=100, xi=(1.0, 2.0), gain=(1.0, 2.0, 3.0))


# --------------------------------------------------------------------------- skewed texture


def test_skewed_texture_moments_match_the_analytic_ones():
    n, size, sigma, a, xi = 40_000, 16, 1.0, 0.25, 2.0
    ds = load_dataset("skewed_texture", n=n, seed=4)
    assert ds.x.shape == (n, 1, size, size) and ds.num_classes == 4 and ds.periodic
    means = a * oracle_templates(size).reshape(2, -1)[torch.arange(4) % 2]
    cov = torch.expm1(sigma**2 * oracle_correlation(size, xi)) / math.expm1(sigma**2)
    module = synthetic.skewed_texture_moments(size, sigma=sigma, amplitude=a, xi=xi)
    torch.testing.assert_close(module, (means, cov))
    assert torch.equal(means[0], means[2]) and torch.equal(means[1], means[3])
    centred = torch.empty(n, size * size, dtype=torch.float64)
    for c in range(4):
        xc = ds.x[ds.y == c].reshape(-1, size * size).double()
        se = xc.std(0) / math.sqrt(len(xc))
        assert ((xc.mean(0) - means[c]).abs() < 5 * se).all()
        # one covariance for both skew signs; error / noise = 1.00 ± 0.05 over seeds and classes
        error, noise = covariance_error(xc, cov)
        assert error < 1.3 * noise
        skew = scipy.stats.skew(xc.numpy(), axis=0).mean()
        assert skew > 1 if c < 2 else skew < -1
        centred[ds.y == c] = xc - xc.mean(0)
    error, noise = covariance_error(centred, cov)  # all classes pooled: half the noise
    assert error < 1.3 * noise
    wrong = torch.expm1(sigma**2 * oracle_correlation(size, 2.3)) / math.expm1(sigma**2)
    assert covariance_error(centred, wrong)[0] > 3 * noise  # the test tells ξ = 2 from ξ = 2.3


def test_skewed_texture_options_and_determinism():
    options = dict(n=400, sigma=0.5, amplitude=0.0, xi=1.5, size=8)
    a = load_dataset("skewed_texture", **options)
    assert a.x.shape == (400, 1, 8, 8) and torch.equal(a.x, load_dataset("skewed_texture", **options).x)
    assert not torch.equal(a.x, load_dataset("skewed_texture", seed=1, **options).x)
    assert not torch.equal(a.x, load_dataset("skewed_texture", split="test", **options).x)
