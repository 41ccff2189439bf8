"""Tests of imprf_utils.data.photographs (``photos`` and ``natural`` tasks) against independent oracles."""

import math
import socket
import sys

import numpy as np
import pytest
import scipy.stats
import skimage.data
import torch

from imprf_utils.data import gaussian_clone, load_dataset
from imprf_utils.data.clone import gaussian_probe_accuracy
import imprf_utils.data.photographs
from imprf_utils.data.photographs import (
    PHOTOS,
    PHOTOS_CLASSES,
    WINDOW,
    patch_contrast,
    phase_scrambled,
    photo_split,
    window_scrambled,
)
from imprf_utils.errors import ConfigError

SMALL = ("coins", "text", "page", "clock", "camera", "moon", "brick", "grass")
"""Grayscale photographs of scikit-image, small enough to search every patch position."""


def oracle_template(size: int) -> np.ndarray:
    i = np.arange(size)
    return math.sqrt(2) * np.cos(2 * np.pi * (i[:, None] + i[None, :]) / size)


def oracle_photo(name: str) -> np.ndarray:
    """The photo as scikit-image ships it, standardized over its own pixels."""
    image = getattr(skimage.data, name)() / 255.0
    return (image - image.mean()) / image.std()


def find_patch(patch: np.ndarray, image: np.ndarray, tol: float = 1e-5) -> list[tuple[int, int]]:
    """Every top-left (r, c) where `patch` (s, s) equals image[r:r+s, c:c+s] within tol."""
    s = len(patch)
    h, w = image.shape[0] - s + 1, image.shape[1] - s + 1
    candidates = np.argwhere(
        (np.abs(image[:h, :w] - patch[0, 0]) < tol) & (np.abs(image[:h, 1 : w + 1] - patch[0, 1]) < tol)
    )
    return [
        (r, c) for r, c in candidates if np.abs(image[r : r + s, c : c + s] - patch).max() < tol
    ]


def test_shapes_attributes_and_balanced_labels():
    ds = load_dataset("photos", n=400)
    assert ds.x.shape == (400, 1, 16, 16) and ds.x.dtype == torch.float32
    assert ds.y.dtype == torch.int64 and torch.bincount(ds.y).tolist() == [100] * 4
    assert ds.num_classes == 4 and ds.name == "photos" and ds.class_names == list(PHOTOS_CLASSES)
    assert not ds.periodic and ds.mean is None and ds.image_shape == (1, 16, 16)
    assert not (ds.y[:40] == ds.y[0]).all()  # shuffled
    colour = load_dataset("photos", n=202, size=32, grayscale=False, split="test")
    assert colour.x.shape == (202, 3, 32, 32) and torch.bincount(colour.y).tolist() == [51, 51, 50, 50]


def test_scrambled_twin_keeps_the_amplitude_spectrum_and_the_mean():
    camera = oracle_photo("camera")
    patches = np.stack([camera[r : r + 16, c : c + 16] for r, c in ((100, 200), (300, 40), (7, 411))])
    astronaut = skimage.data.astronaut()[200:232, 150:182] / 255.0
    for x in (torch.from_numpy(patches[:, None]), torch.from_numpy(astronaut.transpose(2, 0, 1)[None])):
        twin = phase_scrambled(x, torch.Generator().manual_seed(0)).numpy()
        original = np.fft.fft2(x.numpy())
        spectrum = np.fft.fft2(twin)
        np.testing.assert_allclose(np.abs(spectrum), np.abs(original), atol=1e-9)
        np.testing.assert_allclose(twin.mean((-2, -1)), x.numpy().mean((-2, -1)), atol=1e-12)
        # the phases did change: a scrambled patch is far from the original
        for a, b in zip(twin.reshape(len(twin), -1), x.numpy().reshape(len(twin), -1)):
            assert np.corrcoef(a, b)[0, 1] < 0.9
        # one random phase per image, shared by its channels (colours stay aligned)
        shift = np.angle(spectrum * np.conj(original))
        strong = np.abs(original).min((0, 1)) > 1e-3
        assert np.allclose(np.exp(1j * shift[:, :, strong]), np.exp(1j * shift[:, :1, strong]), atol=1e-6)


@pytest.mark.parametrize("scramble", ["window", "circular"])
def test_real_patches_are_crops_of_their_split_photographs_only(scramble):
    """And with the window scramble, crops whose window (WINDOW × the side, centred) fits in the photo."""
    split = photo_split(SMALL, seed=3)
    assert set(split["train"]) | set(split["test"]) == set(SMALL)
    assert not set(split["train"]) & set(split["test"]) and len(split["test"]) == 2
    amplitude = 0.25
    border = (WINDOW - 1) * 16 // 2 if scramble == "window" else 0
    originals = {name: oracle_photo(name) for name in SMALL}
    for name in ("train", "test"):
        ds = load_dataset("photos", n=48, photos=SMALL, seed=3, split=name, amplitude=amplitude, scramble=scramble)
        sign = 1 - 2 * (ds.y.numpy() % 2)
        clean = ds.x.numpy()[:, 0] - amplitude * sign[:, None, None] * oracle_template(16)
        for patch in clean[ds.y.numpy() < 2]:
            sources = [p for p in SMALL if find_patch(patch, originals[p])]
            assert len(sources) == 1 and sources[0] in split[name], sources
            assert patch.std() >= 0.1  # min_contrast
            (r, c), = find_patch(patch, originals[sources[0]])
            height, width = originals[sources[0]].shape
            assert border <= r <= height - 16 - border and border <= c <= width - 16 - border


def test_window_scrambled_centre_has_the_real_centres_mean_and_sd_and_new_phases():
    camera = torch.from_numpy(oracle_photo("camera"))
    gray = torch.stack([camera[r : r + 48, c : c + 48] for r, c in ((100, 200), (300, 40), (7, 411))])[:, None]
    colour = gray.expand(-1, 3, -1, -1) * torch.tensor([1.0, 0.5, 2.0])[:, None, None] + torch.tensor([0.0, 1.0, -1.0])[:, None, None]
    for windows in (gray, colour):
        scrambled = window_scrambled(windows, 16, torch.Generator().manual_seed(0))
        centre = windows[..., 16:32, 16:32]
        assert scrambled.shape == centre.shape
        torch.testing.assert_close(scrambled.mean((-2, -1)), centre.mean((-2, -1)), rtol=0, atol=1e-12)
        torch.testing.assert_close(scrambled.std((-2, -1)), centre.std((-2, -1)), rtol=1e-12, atol=0)
        for a, b in zip(scrambled[:, 0].flatten(1), centre[:, 0].flatten(1)):
            assert np.corrcoef(a, b)[0, 1] < 0.9
        # the window, not the patch, is circular: a scrambled patch's opposite edges are no closer than a real one's
        edges = lambda x: (x[..., 0] - x[..., -1]).abs().mean()
        assert edges(scrambled) > 0.5 * edges(centre)


def real_vs_scrambled_probe(size: int, scramble: str) -> float:
    """The Gaussian probe's test accuracy at real vs scrambled: 8000 training patches, 4000 test patches."""
    train = load_dataset("photos", n=8000, size=size, scramble=scramble)
    test = load_dataset("photos", n=4000, size=size, scramble=scramble, split="test")
    return gaussian_probe_accuracy(train.x, train.y >= 2, test.x, test.y >= 2)


@pytest.mark.parametrize("size", [16, 32])
def test_a_gaussian_probe_cannot_tell_window_scrambled_patches_and_sees_circular_ones(size):
    """The window scramble keeps real patches' second-order statistics (probe ≤ 0.56, held-out photographs);
    the circular one does not (≥ 0.6): its patches are periodic. Measured: 0.520 / 0.636 at 16×16, 0.520 /
    0.658 at 32×32 (seed 0)."""
    assert real_vs_scrambled_probe(size, "window") <= 0.56
    assert real_vs_scrambled_probe(size, "circular") >= 0.6


def test_photo_split_is_by_photograph_and_deterministic():
    split = photo_split(PHOTOS, seed=0)
    assert len(split["test"]) == round(len(PHOTOS) / 4) and not set(split["train"]) & set(split["test"])
    assert set(split["train"]) | set(split["test"]) == set(PHOTOS)
    assert split == photo_split(PHOTOS, seed=0)
    assert any(photo_split(PHOTOS, seed=s)["test"] != split["test"] for s in (1, 2, 3))
    assert photo_split(("china", "flower"), seed=0)["test"] in (("china",), ("flower",))


def test_determinism_per_seed_and_split():
    a = load_dataset("photos", n=200, photos=SMALL)
    assert torch.equal(a.x, load_dataset("photos", n=200, photos=SMALL).x)
    assert not torch.equal(a.x, load_dataset("photos", n=200, photos=SMALL, seed=1).x)
    assert not torch.equal(a.x, load_dataset("photos", n=200, photos=SMALL, split="test").x)


def test_template_bit_adds_plus_or_minus_amplitude_times_the_template():
    options = dict(n=200, photos=SMALL, seed=2)
    plain = load_dataset("photos", amplitude=0.0, **options)
    marked = load_dataset("photos", amplitude=0.3, **options)
    assert torch.equal(plain.y, marked.y)
    sign = 1 - 2 * (plain.y.numpy() % 2)
    expected = 0.3 * sign[:, None, None] * oracle_template(16)
    np.testing.assert_allclose(marked.x.numpy()[:, 0] - plain.x.numpy()[:, 0], expected, atol=1e-5)


def test_edges_make_real_patches_heavier_tailed_than_scrambled_ones_and_the_clone_loses_it():
    """Kurtosis of neighbour differences x[r, c+1] − x[r, c] (edges): real > scrambled in the data,
    both ≈ 3 in the Gaussian clone. (The kurtosis of the pixels themselves does not separate the
    classes: a scrambled patch's pixels are a scale mixture of Gaussians across patches, and
    which class has the heavier pixel tails changes with the seed and split.)"""
    ds = load_dataset("photos", n=4_000)
    clone = gaussian_clone(ds, seed=1)

    def edge_kurtosis(d, real):
        x = d.x.numpy()[:, 0][(d.y.numpy() < 2) == real]
        return scipy.stats.kurtosis(np.diff(x, axis=2).ravel(), fisher=False)

    real, scrambled = edge_kurtosis(ds, True), edge_kurtosis(ds, False)
    assert real > 1.5 * scrambled and scrambled > 3.5
    for kurtosis in (edge_kurtosis(clone, True), edge_kurtosis(clone, False)):
        assert abs(kurtosis - 3) < 0.2


def test_gaussian_clone_of_photos():
    ds = load_dataset("photos", n=2_000, photos=SMALL)
    clone = gaussian_clone(ds, seed=0)
    assert clone.x.shape == ds.x.shape and clone.x.dtype == torch.float32
    assert torch.equal(clone.y, ds.y) and clone.name == "photos-clone" and not clone.periodic
    for c in range(4):
        x, xc = ds.x[ds.y == c].flatten(1), clone.x[ds.y == c].flatten(1)
        se = x.std(0) / math.sqrt(len(x))
        assert ((xc.mean(0) - x.mean(0)).abs() < 6 * se * math.sqrt(2)).all()


def test_patch_contrast_matches_brute_force():
    image = torch.rand(2, 9, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    contrast = patch_contrast(image, 4)
    assert contrast.shape == (6, 8)
    for r in range(6):
        for c in range(8):
            expected = image[:, r : r + 4, c : c + 4].std(correction=0)
            assert abs(float(contrast[r, c] - expected)) < 1e-12


def test_errors_name_what_to_change(monkeypatch):
    with pytest.raises(ConfigError, match="two or more distinct photos"):
        load_dataset("photos", photos=("china", "lena"))
    with pytest.raises(ConfigError, match="two or more distinct photos"):
        load_dataset("photos", photos=("coins", "coins"))
    with pytest.raises(ConfigError, match="smaller than the 600×600 window a 200×200 patch needs"):
        load_dataset("photos", n=8, size=200, photos=("text", "page"))
    with pytest.raises(ConfigError, match="scramble must be one of window, circular"):
        load_dataset("photos", n=8, scramble="fft")
    with pytest.raises(ConfigError, match="amplitude"):
        load_dataset("photos", n=8, amplitude=-1.0)
    with pytest.raises(ConfigError, match="lower min_contrast"):
        load_dataset("photos", n=8, photos=SMALL, min_contrast=50.0)
    with pytest.raises(ConfigError, match="valid options: n, size, grayscale, amplitude, min_contrast, scramble"):
        load_dataset("photos", colour=True)

    monkeypatch.setitem(sys.modules, "skimage", None)  # as if scikit-image were not installed
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    imprf_utils.data.photographs._photo.cache_clear()
    try:
        with pytest.raises(ModuleNotFoundError, match="pip install scikit-image"):
            load_dataset("photos", n=8)
    finally:
        imprf_utils.data.photographs._photo.cache_clear()


# --------------------------------------------------------------------------- natural photos


def test_natural_patches_come_from_their_photo_and_split_by_blocks():
    import skimage.data

    photos = ("coins", "text")
    coins = torch.from_numpy(skimage.data.coins() / np.float32(255))  # the oracle: the photo itself
    crops = coins.unfold(0, 16, 1).unfold(1, 16, 1).reshape(-1, 256)
    width = coins.shape[1] - 15

    def zscore(p):
        p = p - p.mean(-1, keepdim=True)
        return p / p.norm(dim=-1, keepdim=True)

    crops = zscore(crops)
    for split, parity in (("train", 0), ("test", 1)):
        ds = load_dataset("natural", n=200, photos=photos, split=split)
        assert ds.x.shape == (200, 1, 16, 16) and ds.x.dtype == torch.float32
        assert ds.class_names == list(photos) and torch.bincount(ds.y).tolist() == [100, 100]
        patches = zscore(ds.x[ds.y == 0].reshape(-1, 256))
        similarity, position = (patches @ crops.T).max(1)
        assert (similarity > 1 - 1e-4).all()  # each label-0 patch is a crop of coins
        top, left = position // width, position % width
        assert (top // 32 == (top + 15) // 32).all() and (left // 32 == (left + 15) // 32).all()
        assert ((top // 32 + left // 32) % 2 == parity).all()  # train: even blocks, test: odd


def test_natural_default_works_offline_standardized_and_deterministic(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    imprf_utils.data.photographs._photo.cache_clear()  # read the photos again, now without network
    ds = load_dataset("natural", n=4_000)
    assert ds.num_classes == 8 and ds.mean is None and not ds.periodic
    assert abs(float(ds.x.mean())) < 0.1 and abs(float(ds.x.std()) - 1) < 0.1
    assert torch.equal(ds.x, load_dataset("natural", n=4_000).x)
    assert not torch.equal(ds.x, load_dataset("natural", n=4_000, seed=1).x)
    with pytest.raises(ConfigError, match="grace_hopper"):
        load_dataset("natural", photos=("china", "lena"))
