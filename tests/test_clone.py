"""Tests of the Gaussian clone: each class's mean and covariance (sample or exact) and Gaussian
marginals, whatever the data's; labels, dtype and metadata kept; and `data.clone_splits`, whose
clones share no sampling noise between the training and the test split."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from imprf_utils.data import Dataset, clone_splits, exact_moments, gaussian_clone, load_dataset
from imprf_utils.data.clone import gaussian_clone_from_moments, gaussian_probe_accuracy
from imprf_utils.data.synthetic import skewed_texture_moments
from conftest import covariance_error
from imprf_utils.errors import ConfigError


def class_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.reshape(len(x), -1).double()
    return x.mean(0), torch.cov(x.T)


@pytest.fixture(scope="module")
def nlgp():
    """NLGP at gain 10 (nearly binary pixels), four correlation lengths, 5,000 images a class."""
    ds = load_dataset("nlgp", n=20_000, seed=3)
    return ds, gaussian_clone(ds, seed=0)


def test_clone_keeps_labels_shape_dtype_and_metadata(nlgp):
    ds, clone = nlgp
    assert clone.x.shape == ds.x.shape and clone.x.dtype == ds.x.dtype
    assert torch.equal(clone.y, ds.y) and clone.num_classes == ds.num_classes
    assert clone.name == "nlgp-clone" and clone.class_names == ds.class_names
    assert clone.periodic == ds.periodic and clone.mean is None
    assert torch.isfinite(clone.x).all()


def test_clone_has_the_class_means_and_covariances(nlgp):
    ds, clone = nlgp
    for c in range(ds.num_classes):
        mean, cov = class_moments(ds.x[ds.y == c])
        sample = clone.x[clone.y == c].reshape(-1, mean.numel()).double()
        # the clone's sample mean scatters around the class mean with sd sqrt(diag Σ / n_c)
        assert ((sample.mean(0) - mean).abs() < 5 * (cov.diag() / len(sample)).sqrt()).all()
        # ‖Ĉ_clone − Σ_c‖_F concentrates at its expected size (ratio ≈ 1.0)
        error, noise = covariance_error(sample, cov)
        assert error < 1.5 * noise
        other = class_moments(ds.x[ds.y == (c + 1) % ds.num_classes])[1]
        assert covariance_error(sample, other)[0] > 3 * noise  # and not another class's


def _mean_kurtosis(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson kurtosis of each pixel within each class (scipy), averaged."""
    flat = x.reshape(len(x), -1).numpy()
    per_class = [scipy.stats.kurtosis(flat[(y == c).numpy()], axis=0, fisher=False) for c in y.unique()]
    return float(np.mean(per_class))


def test_clone_pixels_are_gaussian_and_the_data_are_not(nlgp):
    ds, clone = nlgp
    assert _mean_kurtosis(ds.x, ds.y) < 1.5  # gain 10: nearly binary pixels
    # Gaussian: 3, standard error sqrt(24 / 5000) ≈ 0.07 per pixel, less for the average
    assert abs(_mean_kurtosis(clone.x, clone.y) - 3) < 0.1

    skewed = load_dataset("skewed_texture", n=8_000)
    assert _mean_kurtosis(skewed.x, skewed.y) > 5  # log-normal texture: heavy tails
    assert abs(_mean_kurtosis(gaussian_clone(skewed).x, skewed.y) - 3) < 0.15


def test_clone_with_fewer_samples_than_dimensions_stays_in_the_class_span():
    # n_c = 10 < D = 192: the covariance is singular, the clone lives in span(X_c) + μ_c
    g = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat_interleave(10)
    x = torch.randn(30, 3, 8, 8, generator=g) + 5 * y[:, None, None, None]
    ds = Dataset(x, y, 3, "small")
    clone = gaussian_clone(ds, chunk_size=4)  # several chunks per class
    for c in range(3):
        data = x[y == c].reshape(10, -1).double()
        mean = data.mean(0)
        basis = torch.linalg.svd((data - mean).T, full_matrices=False).U[:, :9]  # rank n_c - 1
        residual = clone.x[y == c].reshape(10, -1).double() - mean
        assert (residual - residual @ basis @ basis.T).norm() < 1e-4 * residual.norm()
        assert residual.norm() > 1  # a fresh draw, not the mean
    assert not torch.allclose(clone.x, x)


def test_uint8_clone_is_rounded_and_clamped():
    g = torch.Generator().manual_seed(1)
    n = 4_000
    y = torch.arange(2).repeat(n // 2)
    narrow = 100 + torch.randint(0, 5, (n, 1, 4, 4), generator=g)  # values 100..104
    near_zero = torch.randint(0, 4, (n, 1, 4, 4), generator=g)  # values 0..3: clone dips below 0
    x = torch.where(y[:, None, None, None] == 0, narrow, near_zero).to(torch.uint8)
    mean = x.reshape(n, -1).float().mean(0)
    ds = Dataset(x, y, 2, "bytes", mean=mean, class_names=["narrow", "near zero"])
    clone = gaussian_clone(ds, seed=5)
    assert clone.x.dtype == torch.uint8 and clone.x.shape == x.shape and torch.equal(clone.y, y)
    assert clone.mean is mean and clone.class_names == ds.class_names
    # rounding, not truncation: the narrow class keeps its mean (truncation would lose 0.5)
    data_mean, clone_mean = x[y == 0].float().mean(0), clone.x[y == 0].float().mean(0)
    assert ((data_mean - clone_mean).abs() < 0.15).all()
    # clamped at 0, not wrapped around to 255
    assert clone.x[y == 1].max() < 20 and (clone.x[y == 1] == 0).any()


def test_clone_is_deterministic_per_seed(nlgp):
    ds, clone = nlgp
    small = ds.subset(slice(0, 400))
    assert torch.equal(gaussian_clone(small, seed=7).x, gaussian_clone(small, seed=7).x)
    assert not torch.equal(gaussian_clone(small, seed=7).x, gaussian_clone(small, seed=8).x)


def test_clone_needs_two_samples_per_class():
    x = torch.randn(3, 1, 2, 2)
    with pytest.raises(ConfigError, match="class 1 has 1 sample"):
        gaussian_clone(Dataset(x, torch.tensor([0, 0, 1]), 2, "tiny"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_clone_runs_on_the_data_device(nlgp):
    ds, _ = nlgp
    clone = gaussian_clone(ds.to("cuda"))
    assert clone.x.device.type == "cuda" and clone.x.dtype == ds.x.dtype
    assert torch.equal(clone.y.cpu(), ds.y)


def test_clone_drawn_from_other_statistics_has_their_moments_and_its_own_labels(nlgp):
    """A 40-image test set cloned from a 20,000-image training set: its samples follow the
    training classes' Gaussians, not the rank-9 covariance of its own 10 images a class."""
    train, _ = nlgp
    test = load_dataset("nlgp", n=40, seed=4)
    clone = gaussian_clone(test, seed=1, statistics=train)
    assert torch.equal(clone.y, test.y) and clone.x.shape == test.x.shape
    many = gaussian_clone(load_dataset("nlgp", n=20_000, seed=4), seed=1, statistics=train)
    for c in range(4):
        mean, cov = class_moments(train.x[train.y == c])
        x = many.x[many.y == c]
        error, noise = covariance_error(x, cov)
        assert error < 3 * noise
        assert (x.reshape(len(x), -1).double().mean(0) - mean).abs().max() < 0.1
    # Its own statistics confine each class to the affine span of its ~10 images; the
    # training statistics do not.
    x0 = test.x[test.y == 0].flatten(1).double()
    basis = torch.linalg.qr((x0 - x0.mean(0)).T).Q  # (D, n_0)

    def outside_span(samples: torch.Tensor) -> float:
        centred = samples[test.y == 0].flatten(1).double() - x0.mean(0)
        return float((centred - centred @ basis @ basis.T).norm() / centred.norm())

    assert outside_span(gaussian_clone(test, seed=1).x) < 1e-4
    assert outside_span(clone.x) > 0.5

def test_clone_statistics_must_match_shape_and_classes(nlgp):
    train, _ = nlgp
    with pytest.raises(ConfigError, match="statistics"):
        gaussian_clone(load_dataset("nlgp", n=40, size=8), statistics=train)


# --- the clone every run uses: exact moments, or independent halves (data.clone_splits) -------


def test_clone_from_moments_has_those_moments_and_gaussian_pixels():
    means, cov = skewed_texture_moments(8)
    ds = load_dataset("skewed_texture", n=20_000, size=8, seed=1)
    clone = gaussian_clone_from_moments(ds, means, cov, seed=2)
    assert torch.equal(clone.y, ds.y) and clone.x.shape == ds.x.shape and clone.name == "skewed_texture-clone"
    for c in range(4):
        x = clone.x[clone.y == c]
        error, noise = covariance_error(x, cov)
        assert error < 3 * noise, (c, error, noise)
        assert float((x.flatten(1).double().mean(0) - means[c]).abs().max()) < 5 / math.sqrt(len(x))
    assert abs(float(scipy.stats.kurtosis(clone.x.flatten().numpy(), fisher=False)) - 3) < 0.05
    assert torch.equal(gaussian_clone_from_moments(ds, means, cov, seed=2).x, clone.x)
    with pytest.raises(ConfigError, match="do not fit 4 classes of 64 pixels"):
        gaussian_clone_from_moments(ds, means[:, :10], cov)


def test_exact_moments_are_the_generators_and_match_a_large_sample():
    means, covs = exact_moments("nlgp", n=123, xi=(1.0, 3.0), gain=4.0, size=8)
    assert means.shape == (2, 64) and covs.shape == (2, 64, 64) and not means.any()
    ds = load_dataset("nlgp", n=20_000, xi=(1.0, 3.0), gain=4.0, size=8, seed=5)
    for c in range(2):
        error, noise = covariance_error(ds.x[ds.y == c], covs[c])
        assert error < 3 * noise, (c, error, noise)
    texture_means, texture_cov = exact_moments("skewed_texture", sigma=0.5, size=8)
    expected = skewed_texture_moments(8, sigma=0.5)
    assert torch.equal(texture_means, expected[0]) and torch.equal(texture_cov, expected[1])
    assert exact_moments("photos") is None and exact_moments("cifar10") is None


def test_an_exact_clone_owes_nothing_to_the_data_samples():
    """Two different draws of the data with the same labels give the same clone: no sampling noise to learn."""
    train = load_dataset("skewed_texture", n=400, size=8, seed=0)
    test = load_dataset("skewed_texture", split="test", n=100, size=8, seed=0)
    other = Dataset(torch.randn_like(train.x), train.y, 4, "skewed_texture", periodic=True)
    a_train, a_test = clone_splits("skewed_texture", train, test, seed=3, size=8)
    b_train, _ = clone_splits("skewed_texture", other, test, seed=3, size=8)
    assert torch.equal(a_train.x, b_train.x)
    # streams 2·seed and 2·seed + 1: no two data seeds share one (seed 3's test clone is not seed 4's training clone)
    assert torch.equal(a_train.x, gaussian_clone_from_moments(train, *skewed_texture_moments(8), seed=6).x)
    assert torch.equal(a_test.x, gaussian_clone_from_moments(test, *skewed_texture_moments(8), seed=7).x)


def test_without_known_moments_train_and_test_clones_come_from_disjoint_halves():
    """The training clone depends on one half of the training images only, the test clone on the other."""
    train = load_dataset("nlgp", n=400, size=8, seed=0)
    test = load_dataset("nlgp", split="test", n=100, size=8, seed=0)
    clone_train, clone_test = clone_splits("cifar10", train, test, seed=1)  # a name without exact moments
    half = torch.randperm(len(train), generator=torch.Generator().manual_seed(2))[: len(train) // 2]  # stream 2·seed
    changed = train.x.clone()
    changed[half] += 1.0  # the first half's images move: only the training clone may change
    moved_train, moved_test = clone_splits("cifar10", Dataset(changed, train.y, train.num_classes, "nlgp"), test, seed=1)
    assert not torch.equal(moved_train.x, clone_train.x) and torch.equal(moved_test.x, clone_test.x)
    unchanged = train.x.clone()
    unchanged[~torch.isin(torch.arange(len(train)), half)] -= 1.0  # the second half moves: only the test clone may
    other_train, other_test = clone_splits("cifar10", Dataset(unchanged, train.y, train.num_classes, "nlgp"), test, seed=1)
    assert torch.equal(other_train.x, clone_train.x) and not torch.equal(other_test.x, clone_test.x)


def test_a_photos_test_clone_is_drawn_from_the_test_photographs():
    """photos' test patches come from other photographs: each split's clone takes its own split's moments,
    so the data and the clone are scored on comparable test sets."""
    train = load_dataset("photos", n=800, size=8)
    test = load_dataset("photos", split="test", n=400, size=8)
    clone_train, clone_test = clone_splits("photos", train, test, seed=1, size=8)
    assert torch.equal(clone_train.x, gaussian_clone(train, seed=2).x)  # streams 2·seed and 2·seed + 1
    assert torch.equal(clone_test.x, gaussian_clone(test, seed=3).x)


def test_the_gaussian_probe_sees_covariances_and_nothing_beyond_them():
    """Two classes that differ in covariance are told apart; two with the same mean and covariance (one
    Gaussian, one with Laplace pixels: kurtosis 6) are not, however non-Gaussian one of them is."""
    g = torch.Generator().manual_seed(0)
    n, d = 4000, 16
    gaussian = torch.randn(n, d, generator=g, dtype=torch.float64)
    stretched = gaussian * torch.linspace(0.25, 2.0, d, dtype=torch.float64)
    laplace = torch.distributions.Laplace(0.0, 1 / math.sqrt(2)).sample((n, d)).double()
    labels = torch.arange(n) % 2 == 1

    def probe(a: torch.Tensor, b: torch.Tensor) -> float:
        x = torch.where(labels[:, None], a, b)
        return gaussian_probe_accuracy(x[: n // 2], labels[: n // 2], x[n // 2 :], labels[n // 2 :], components=8)

    assert probe(stretched, torch.randn(n, d, generator=g, dtype=torch.float64)) > 0.7
    assert abs(probe(laplace, torch.randn(n, d, generator=g, dtype=torch.float64)) - 0.5) < 0.04
