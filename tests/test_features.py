"""ICA / PCA components, their localization, and the dense one-hidden-layer check."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from imprf_utils.data import gaussian_clone, load_dataset
from imprf_utils.notebooks.features import (
    ica_components,
    ica_vs_pca,
    localization,
    pca_components,
    top_magnitude_pixels,
    train_one_hidden_layer,
)
from imprf_utils.training.device_data import DeviceData
from imprf_utils.training.models import MaskedFCN
from imprf_utils.training.train import train


def sources_and_mixing(n=4000, d=16, seed=0):
    """Independent Laplace sources mixed by a random orthogonal matrix A: x = s Aᵀ."""
    rng = np.random.default_rng(seed)
    s = rng.laplace(size=(n, d))
    a, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return torch.from_numpy(s @ a.T), a


def is_signed_permutation(m: np.ndarray, tol: float) -> bool:
    m = np.abs(m)
    return bool((np.abs(m.max(axis=0) - 1) < tol).all() and (np.abs(m.max(axis=1) - 1) < tol).all())


def test_pca_matches_sklearn_up_to_sign():
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(500, 12)) * np.arange(1, 13))
    ours = pca_components(x, 5).numpy()
    oracle = PCA(n_components=5, svd_solver="full").fit(x.numpy()).components_
    assert np.abs(np.abs((ours * oracle).sum(1)) - 1).max() < 1e-8
    assert np.allclose(np.linalg.norm(ours, axis=1), 1)


def test_pca_of_a_stationary_field_on_a_torus_is_spread_out():
    """Fourier-like modes: IPR·D of a cosine is 1.5 to 2.25, far below a localized vector's."""
    ds = load_dataset("nlgp", n=2000, size=8, xi=(2.0, 2.0), gain=(0.1, 0.2))  # nearly Gaussian, stationary
    components = pca_components(ds.x.flatten(1), 10)
    assert localization(components, ds.image_shape, periodic=True)["ipr_d"] < 3


def test_ica_recovers_independent_sources():
    """Filters W with s = W x are the rows of Aᵀ, basis vectors the columns of A, up to order and sign."""
    x, a = sources_and_mixing()
    filters, basis, converged = ica_components(x, 16, seed=0)
    assert converged
    assert is_signed_permutation(filters.numpy() @ a, tol=0.05)
    assert is_signed_permutation(basis.numpy() @ a, tol=0.05)


def test_ica_of_localized_sources_is_localized_and_of_gaussian_data_is_not():
    """Sparse sources each on one of 16 pixels: one-hot filters (IPR·D ≈ D); Gaussian data: no preferred rotation."""
    rng = np.random.default_rng(2)
    d = 64
    sparse = 0.05 * rng.normal(size=(4000, d))
    sparse[:, rng.permutation(d)[:16]] += rng.laplace(size=(4000, 16))
    filters, _, _ = ica_components(torch.from_numpy(sparse), 16, seed=0)
    assert localization(filters, (1, 8, 8))["ipr_d"] > 0.5 * d
    gaussian = torch.from_numpy(rng.normal(size=(2000, d)))
    filters, _, converged = ica_components(gaussian, 16, seed=0, max_iter=50)
    assert not converged  # nothing to converge to
    assert 2 < localization(filters, (1, 8, 8))["ipr_d"] < 5


def test_ica_rows_have_unit_norm_and_positive_peak():
    x, _ = sources_and_mixing(n=1000, d=8)
    for w in ica_components(x, 4, seed=3)[:2]:
        assert w.shape == (4, 8)
        assert torch.allclose(w.norm(dim=1), torch.ones(4, dtype=torch.float64))
        assert bool((w.gather(1, w.abs().argmax(1, keepdim=True)) > 0).all())


def test_ica_vs_pca_table():
    """One draw of images for both seeds (a dataset read from files): PCA is the same, FastICA starts from each seed."""
    x, _ = sources_and_mixing(n=2000, d=16)
    gauss = torch.randn(2000, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    table, components = ica_vs_pca({"data": {0: x, 1: x}, "gauss": {0: gauss, 1: gauss}}, (1, 4, 4), n_components=4)
    assert len(table) == 2 * 2 * 3
    assert table.groupby("data").method.value_counts().to_dict()[("data", "ica")] == 2
    assert table.seed.dtype == "int64" and table.seed.tolist() == [0] * 3 + [1] * 3 + [0] * 3 + [1] * 3
    assert components[("gauss", "ica", 1)].shape == (4, 16)
    assert torch.equal(components[("data", "pca", 0)], components[("data", "pca", 1)])
    assert torch.equal(components[("data", "ica", 1)], ica_components(x, 4, seed=1)[0])
    assert set(table.columns) >= {"ipr_d", "ipr_d_max", "rf_width_ratio", "converged"}


def test_ica_vs_pca_fits_each_seeds_own_draw():
    """Seed s is a data draw: its own PCA and its own FastICA (random_state s), one PCA row per seed."""
    draws = {seed: sources_and_mixing(n=2000, d=16, seed=seed)[0] for seed in (0, 1)}
    table, components = ica_vs_pca({"data": draws}, (1, 4, 4), n_components=4)
    assert table[table.method == "pca"].seed.tolist() == [0, 1]
    assert not torch.allclose(components[("data", "pca", 0)], components[("data", "pca", 1)], atol=0.1)
    for seed, x in draws.items():
        assert torch.equal(components[("data", "pca", seed)], pca_components(x, 4))
        assert torch.equal(components[("data", "ica", seed)], ica_components(x, 4, seed=seed)[0])


def test_top_magnitude_pixels_collapses_channels_by_norm():
    w = torch.zeros(1, 2 * 3 * 3)
    w[0, 0] = 1.0  # channel 0, pixel (0, 0)
    w[0, 9 + 4] = -2.0  # channel 1, pixel (1, 1)
    w[0, 8], w[0, 9 + 8] = 0.8, 0.8  # pixel (2, 2) in both channels: norm 1.13
    mask = top_magnitude_pixels(w, (2, 3, 3), 2)
    assert mask.shape == (1, 9)
    assert mask[0].nonzero().flatten().tolist() == [4, 8]


def test_localization_of_known_vectors():
    shape = (1, 8, 8)
    one_hot = torch.eye(64)[:10]
    assert localization(one_hot, shape)["ipr_d"] == pytest.approx(64)
    gaussian = torch.randn(400, 64, generator=torch.Generator().manual_seed(0))
    assert localization(gaussian, shape)["ipr_d"] == pytest.approx(3, abs=0.4)
    blob = torch.zeros(4, 8, 8)
    for k in range(4):
        blob[k, 2 * k : 2 * k + 3, 1:4] = 1.0  # 3x3 squares
    result = localization(blob.flatten(1) + 1e-3, shape, top_fraction=9 / 64)
    assert result["rf_width_ratio"] < 0.6
    assert result["ipr_d"] == pytest.approx(64 / 9, rel=0.01)


@pytest.fixture(scope="module")
def small_task():
    train_ds = load_dataset("skewed_texture", n=800, size=8, seed=0)
    test_ds = load_dataset("skewed_texture", split="test", n=400, size=8, seed=0)
    return train_ds, test_ds


def test_one_hidden_layer_learns_and_is_deterministic(small_task):
    train_ds, test_ds = small_task
    kwargs = dict(units=8, steps=200, lr=0.1, batch_size=64)
    weights, accuracy = train_one_hidden_layer([train_ds], [test_ds], seeds=[0, 1], **kwargs)
    assert weights.shape == (1, 2, 8, 64)
    assert accuracy.shape == (1, 2)
    assert bool((accuracy > 0.4).all())  # chance 0.25
    again, _ = train_one_hidden_layer([train_ds], [test_ds], seeds=[1], **kwargs)
    assert torch.allclose(again[0, 0], weights[0, 1], atol=1e-5)  # replica of seed 1 = seed 1 trained alone


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_one_hidden_layer_is_train_on_one_dataset(small_task, precision):
    """The wrapper against `train.train` itself: Glorot init and batches of each seed, test accuracy at the end."""
    train_ds, test_ds = small_task
    weights, accuracy = train_one_hidden_layer([train_ds], [test_ds], units=8, steps=150, lr=0.1, batch_size=32,
                                               seeds=[0, 5], precision=precision)
    train_data = DeviceData.from_dataset(train_ds, "cpu")
    model = MaskedFCN((64, 8, train_ds.num_classes), seeds=[0, 5])
    result = train(model, train_data, DeviceData.from_dataset(test_ds, "cpu", mean=train_data.mean), steps=150,
                   batch_size=32, lr=0.1, batch_seeds=[0, 5], eval_every=150, precision=precision)
    assert torch.equal(weights[0], model.weights[0].detach())
    assert torch.equal(accuracy[0], result.test_accuracy[-1])


def test_one_hidden_layer_pairs_data_and_clone_replicas(small_task):
    """Sets trained together match each set trained alone: same init and batches per seed, own images."""
    train_ds, test_ds = small_task
    clone_train, clone_test = gaussian_clone(train_ds), gaussian_clone(test_ds, seed=1)
    kwargs = dict(units=4, steps=120, lr=0.1, batch_size=32, seeds=[0, 3])
    weights, accuracy = train_one_hidden_layer([train_ds, clone_train], [test_ds, clone_test], **kwargs)
    assert weights.shape == (2, 2, 4, 64) and accuracy.shape == (2, 2)
    alone, alone_accuracy = train_one_hidden_layer([clone_train], [clone_test], **kwargs)
    assert torch.allclose(weights[1], alone[0], atol=1e-5)
    assert torch.allclose(accuracy[1], alone_accuracy[0])
    assert not torch.allclose(weights[0], weights[1])


def test_one_hidden_layer_reads_each_seeds_own_draw(small_task):
    """An entry of one set per seed: seed k's replica trains on its own draw as it would alone; a Dataset
    entry is read by every seed."""
    train_ds, test_ds = small_task
    other_train = load_dataset("skewed_texture", n=800, size=8, seed=1)
    other_test = load_dataset("skewed_texture", split="test", n=400, size=8, seed=1)
    kwargs = dict(units=4, steps=120, lr=0.1, batch_size=32)
    weights, accuracy = train_one_hidden_layer([[train_ds, other_train], train_ds], [[test_ds, other_test], test_ds],
                                               seeds=[0, 3], **kwargs)
    assert weights.shape == (2, 2, 4, 64) and accuracy.shape == (2, 2)
    alone, alone_accuracy = train_one_hidden_layer([other_train], [other_test], seeds=[3], **kwargs)
    assert torch.allclose(weights[0, 1], alone[0, 0], atol=1e-5)
    assert torch.allclose(accuracy[0, 1], alone_accuracy[0, 0])
    assert torch.allclose(weights[0, 0], weights[1, 0], atol=1e-5)  # seed 0 reads train_ds in both entries
    assert not torch.allclose(weights[0, 1], weights[1, 1], atol=1e-3)  # seed 3: its own draw vs train_ds


def test_one_hidden_layer_refuses_mismatched_sets(small_task):
    train_ds, test_ds = small_task
    with pytest.raises(ValueError, match="needs sets of one size"):
        train_one_hidden_layer([train_ds, train_ds], [test_ds, train_ds], units=2, steps=1, lr=0.1, batch_size=8)
    with pytest.raises(ValueError, match="2 training sets but 1 test sets"):
        train_one_hidden_layer([train_ds, train_ds], [test_ds], units=2, steps=1, lr=0.1, batch_size=8)
    with pytest.raises(ValueError, match="an entry of 1 datasets for 2 seeds"):
        train_one_hidden_layer([[train_ds]], [test_ds], units=2, steps=1, lr=0.1, batch_size=8, seeds=[0, 1])
