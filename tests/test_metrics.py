"""Tests of imprf_utils.measures against independent oracles: SciPy, brute force, known geometry."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch

from imprf_utils.measures.connections import binomial_null, connections_per_unit, locality_maps, near_pair_fraction
from imprf_utils.measures.preactivations import cavity_scores, class_kurtosis, kurtosis, mean_class_kurtosis, non_gaussianity
from imprf_utils.measures.shape import (
    average_receptive_field, near_centre_share, compactness, compactness_ratio, ipr, rf_width, rf_width_ratio,
    shuffle_positions,
)


def _mask(image_shape, units_pixels):
    """A (units, C*H*W) bool mask; units_pixels: one list of (c, y, x) per unit."""
    c, h, w = image_shape
    mask = torch.zeros(len(units_pixels), c * h * w, dtype=torch.bool)
    for unit, pixels in enumerate(units_pixels):
        for ch, y, x in pixels:
            mask[unit, ch * h * w + y * w + x] = True
    return mask


# ---------------------------------------------------------------------- kurtosis


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_kurtosis_matches_scipy(dim):
    rng = np.random.default_rng(0)
    samples = {
        "gaussian": rng.normal(size=(400, 7)),
        "laplace": rng.laplace(size=(400, 7)),
        "uniform": rng.uniform(size=(400, 7)),
        "exponential": rng.exponential(size=(400, 7)),
    }
    for name, values in samples.items():
        expected = scipy.stats.kurtosis(values, axis=dim, fisher=False, bias=True)
        got = kurtosis(torch.from_numpy(values).float(), dim=dim)
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, err_msg=name)


def test_kurtosis_of_a_gaussian_is_three_and_of_a_constant_nan():
    g = torch.Generator().manual_seed(1)
    assert kurtosis(torch.randn(200_000, generator=g)).item() == pytest.approx(3.0, abs=0.05)
    constant = torch.tensor([[0.1, 0.0], [0.1, 0.0], [0.1, 0.0]])
    assert torch.isnan(kurtosis(constant)).all()


def test_class_kurtosis_and_non_gaussianity():
    rng = np.random.default_rng(2)
    h = rng.laplace(size=(300, 4))
    labels = rng.integers(0, 3, size=300)
    per_class = class_kurtosis(torch.from_numpy(h), torch.from_numpy(labels), num_classes=4)
    assert per_class.shape == (4, 4)
    for c in range(3):
        np.testing.assert_allclose(
            per_class[c].numpy(), scipy.stats.kurtosis(h[labels == c], fisher=False), rtol=1e-10
        )
    assert torch.isnan(per_class[3]).all()  # absent class
    mean = mean_class_kurtosis(torch.from_numpy(h), torch.from_numpy(labels))
    np.testing.assert_allclose(mean.numpy(), per_class[:3].mean(0).numpy(), rtol=1e-12)
    ng = non_gaussianity(torch.from_numpy(h), torch.from_numpy(labels))
    np.testing.assert_allclose(ng.numpy(), (per_class[:3] - 3).abs().mean(0).numpy(), rtol=1e-12)
    pooled = non_gaussianity(torch.from_numpy(h))
    np.testing.assert_allclose(pooled.numpy(), np.abs(scipy.stats.kurtosis(h, fisher=False) - 3))


# ---------------------------------------------------------------------- cavity scores


def _brute_force_cavity(weight, x, mask, labels, bias):
    """Remove each weight in turn and recompute the kurtosis with SciPy (bias included)."""
    w = weight * mask
    h = x @ w.T + bias
    if labels is None:
        groups = [np.arange(len(x))]
    else:
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]

    def g(values):
        return abs(scipy.stats.kurtosis(values, fisher=False) - 3)

    scores = np.full(weight.shape, np.nan)
    for i, j in itertools.product(*map(range, weight.shape)):
        if mask[i, j]:
            per_group = [g(h[rows, i] - w[i, j] * x[rows, j]) - g(h[rows, i]) for rows in groups]
            scores[i, j] = np.mean(per_group)
    return scores


@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("use_labels", [False, True])
def test_cavity_scores_match_brute_force(use_mask, use_labels):
    rng = np.random.default_rng(3)
    n, n_in, n_out = 600, 12, 5
    # Non-Gaussian, correlated, non-centred inputs, exactly representable in float32.
    mixing = rng.normal(size=(n_in, n_in)) / 3
    x = rng.laplace(size=(n, n_in)) @ mixing + rng.exponential(size=(n, n_in)) + 2.0
    x = x.astype(np.float32).astype(np.float64)
    weight = rng.normal(size=(n_out, n_in)).astype(np.float32).astype(np.float64)
    mask = rng.random((n_out, n_in)) < 0.6 if use_mask else np.ones((n_out, n_in), dtype=bool)
    labels = rng.integers(0, 3, size=n) if use_labels else None
    bias = rng.normal(size=n_out) * 5

    expected = _brute_force_cavity(weight, x, mask, labels, bias)
    got = cavity_scores(
        torch.from_numpy(weight).float(),
        torch.from_numpy(x).float(),
        mask=torch.from_numpy(mask) if use_mask else None,
        labels=torch.from_numpy(labels) if use_labels else None,
    )
    assert got.dtype == torch.float64 and got.shape == (n_out, n_in)
    np.testing.assert_array_equal(np.isnan(got.numpy()), ~mask)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-7, atol=1e-10)
    assert np.nanstd(expected) > 1e-3  # the scores are not trivially zero


def test_cavity_scores_chunking_and_identity_with_non_gaussianity(monkeypatch):
    """Scores do not depend on the chunk size, and equal a change of non_gaussianity."""
    import imprf_utils.measures.preactivations as metrics

    g = torch.Generator().manual_seed(4)
    x = torch.rand(1000, 9, generator=g, dtype=torch.float64) ** 3
    weight = torch.randn(4, 9, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 2, (1000,), generator=g)
    whole = cavity_scores(weight, x, labels=labels)
    monkeypatch.setattr(metrics, "_CAVITY_CHUNK_ROWS", 37)
    chunked = cavity_scores(weight, x, labels=labels)
    torch.testing.assert_close(chunked, whole, rtol=1e-10, atol=1e-12)
    i, j = 2, 5
    h = x @ weight.T
    cut = h[:, i] - weight[i, j] * x[:, j]
    expected = non_gaussianity(cut[:, None], labels) - non_gaussianity(h[:, i : i + 1], labels)
    assert whole[i, j].item() == pytest.approx(expected.item(), rel=1e-9)


def test_cavity_scores_last_weight_and_empty_unit_are_nan():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(500, 6, generator=g)
    weight = torch.randn(3, 6, generator=g)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[0] = False  # empty unit
    mask[1, 1:] = False  # a single surviving weight
    scores = cavity_scores(weight, x, mask=mask)
    assert torch.isnan(scores[:2]).all()
    assert not torch.isnan(scores[2]).any()


def test_cavity_scores_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same `in`"):
        cavity_scores(torch.zeros(3, 4), torch.zeros(10, 5))


def test_rf_width_of_known_shapes():
    shape = (1, 8, 10)
    units = [
        [(0, 3, x) for x in range(2, 2 + k)]  # a row of k contiguous pixels
        for k in (1, 2, 3, 5, 8)
    ] + [[(0, 4, 4), (0, 4, 5), (0, 5, 4), (0, 5, 5)]]  # a 2×2 square
    widths = rf_width(_mask(shape, units), shape, min_weights=1)
    expected = [math.sqrt((k * k - 1) / 12) for k in (1, 2, 3, 5, 8)] + [math.sqrt(0.5)]
    np.testing.assert_allclose(widths.numpy(), expected, rtol=1e-12)


def test_rf_width_collapses_channels_and_applies_min_weights():
    shape = (3, 6, 6)
    units = [
        [(0, 1, 1), (1, 1, 1), (2, 1, 1), (0, 1, 2), (2, 1, 3)],  # 3 pixels in a row
        [(0, 1, 1), (1, 1, 2), (2, 1, 3)],  # the same row, one channel each
        [(0, 2, 2), (1, 2, 2), (2, 2, 2), (0, 2, 3)],  # only 2 distinct pixels
    ]
    widths = rf_width(_mask(shape, units), shape, min_weights=3)
    assert widths[0].item() == pytest.approx(math.sqrt(8 / 12))
    assert widths[1].item() == pytest.approx(math.sqrt(8 / 12))
    assert torch.isnan(widths[2])


def test_rf_width_periodic_wraps_and_matches_random_oracle():
    shape = (1, 9, 12)
    blob = [(0, y, x) for y in (3, 4, 5) for x in (5, 6)]
    straddling = [(0, (y + 5) % 9, (x + 6) % 12) for _, y, x in blob]  # across both borders
    mask = _mask(shape, [blob, straddling])
    periodic = rf_width(mask, shape, periodic=True)
    flat = rf_width(mask, shape)
    assert periodic[0].item() == pytest.approx(flat[0].item())
    assert periodic[1].item() == pytest.approx(flat[0].item())
    assert flat[1] > 3 * flat[0]

    # Random masks against the pairwise minimum-image definition, by brute force.
    g = torch.Generator().manual_seed(8)
    rand = torch.rand(6, 2 * 9 * 12, generator=g) < 0.1
    got = rf_width(rand, (2, 9, 12), periodic=True, min_weights=1)
    for unit in range(6):
        pixels = rand[unit].reshape(2, 9, 12).any(0).nonzero().numpy()
        d = np.abs(pixels[:, None, :] - pixels[None, :, :])
        d = np.minimum(d, np.array([9, 12]) - d)
        expected = math.sqrt((d**2).sum() / (2 * len(pixels) ** 2))
        assert got[unit].item() == pytest.approx(expected)


def test_rf_width_ratio_is_one_for_random_masks_and_small_for_blobs():
    shape = (3, 16, 16)
    g = torch.Generator().manual_seed(9)
    random_masks = torch.rand(200, 3 * 16 * 16, generator=g) < 0.03
    assert rf_width_ratio(random_masks, shape, seed=1) == pytest.approx(1.0, abs=0.05)
    squares = [[(u % 3, 5 + dy, u % 13 + dx) for dy in (0, 1) for dx in (0, 1)] for u in range(50)]
    blobs = _mask(shape, squares)
    assert rf_width_ratio(blobs, shape) < 0.2


def test_shuffle_positions_keeps_counts_and_values():
    g = torch.Generator().manual_seed(10)
    weight = torch.randn(20, 50, generator=g) * (torch.rand(20, 50, generator=g) < 0.2)
    shuffled = shuffle_positions(weight, torch.Generator().manual_seed(0))
    assert shuffled.dtype == weight.dtype and shuffled.shape == weight.shape
    torch.testing.assert_close(shuffled.sort(dim=1).values, weight.sort(dim=1).values)
    assert not torch.equal(shuffled, weight)
    mask = weight != 0
    shuffled_mask = shuffle_positions(mask, torch.Generator().manual_seed(0))
    assert torch.equal(connections_per_unit(shuffled_mask), connections_per_unit(mask))
    assert torch.equal(shuffled_mask, shuffled != 0)  # same generator state, same permutation


# ---------------------------------------------------------------------- compactness


def test_compactness_of_blobs_scattered_pixels_and_wrap():
    shape = (2, 10, 10)
    blob = [(0, y, x) for y in range(3, 6) for x in range(4, 8)]
    scattered = [(1, 0, 0), (0, 2, 2), (1, 4, 4), (0, 6, 6), (0, 8, 3)]
    two_pieces = [(0, 1, 1), (0, 1, 2), (0, 1, 3), (0, 7, 7), (0, 7, 8)]
    wrapped = [(0, 4, 0), (0, 4, 9), (0, 5, 9), (1, 0, 5), (0, 9, 5)]  # two pairs across borders
    mask = _mask(shape, [blob, scattered, two_pieces, wrapped, []])
    largest, neighbours = compactness(mask, shape)
    np.testing.assert_allclose(largest[:4].numpy(), [1.0, 1 / 5, 3 / 5, 2 / 5])
    np.testing.assert_allclose(neighbours[:4].numpy(), [1.0, 0.0, 1.0, 2 / 5])
    assert torch.isnan(largest[4]) and torch.isnan(neighbours[4])

    largest_p, neighbours_p = compactness(_mask(shape, [wrapped, scattered]), shape, periodic=True)
    np.testing.assert_allclose(largest_p.numpy(), [3 / 5, 1 / 5])
    np.testing.assert_allclose(neighbours_p.numpy(), [1.0, 0.0])


def test_compactness_periodic_merges_a_ring_around_the_torus():
    shape = (1, 6, 6)
    ring = [(0, 2, x) for x in range(6)]  # a full row: one component that wraps onto itself
    corners = [(0, 0, 0), (0, 0, 5), (0, 5, 0), (0, 5, 5)]  # one 2×2 blob on the torus
    largest, neighbours = compactness(_mask(shape, [ring, corners]), shape, periodic=True)
    np.testing.assert_allclose(largest.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(neighbours.numpy(), [1.0, 1.0])
    largest_flat, _ = compactness(_mask(shape, [ring, corners]), shape)
    np.testing.assert_allclose(largest_flat.numpy(), [1.0, 0.25])


def test_compactness_ratio_against_random_placement():
    shape = (1, 16, 16)
    squares = [[(0, 5 + dy, u % 13 + dx) for dy in range(3) for dx in range(3)] for u in range(40)]
    blobs = _mask(shape, squares)
    largest, neighbours = compactness_ratio(blobs, shape)
    assert largest > 2 and neighbours > 2
    g = torch.Generator().manual_seed(11)
    random_masks = torch.rand(300, 256, generator=g) < 0.1
    largest, neighbours = compactness_ratio(random_masks, shape, seed=3)
    assert largest == pytest.approx(1.0, abs=0.1) and neighbours == pytest.approx(1.0, abs=0.1)


# ---------------------------------------------------------------------- IPR


def test_ipr_one_hot_uniform_gaussian():
    d = 64
    rows = torch.stack([torch.eye(d)[5] * -2.5, torch.full((d,), 0.3), torch.zeros(d)])
    values = ipr(rows)
    assert values[0].item() == pytest.approx(1.0)
    assert values[1].item() == pytest.approx(1 / d)
    assert torch.isnan(values[2])
    g = torch.Generator().manual_seed(12)
    gaussian_rows = torch.randn(200, 4000, generator=g)
    assert ipr(gaussian_rows).mean().item() * 4000 == pytest.approx(3.0, rel=0.02)


# ---------------------------------------------------------------------- locality maps


def _shortest_on_circle(d, length):
    """The one of d, d − L, d + L nearest 0; on a tie (|d| = L/2) d itself."""
    return min((d, d - length, d + length), key=lambda v: (abs(v), v != d))


def _brute_force_locality(mask, image_shape, periodic=False):
    c, h, w = image_shape
    same = np.zeros((2 * h - 1, 2 * w - 1), dtype=np.int64)
    diff = np.zeros_like(same)
    for row in mask.numpy():
        inputs = [np.unravel_index(i, (c, h, w)) for i in np.flatnonzero(row)]
        for a, b in itertools.permutations(inputs, 2):
            target = same if a[0] == b[0] else diff
            dy, dx = int(b[1] - a[1]), int(b[2] - a[2])
            if periodic:
                dy, dx = _shortest_on_circle(dy, h), _shortest_on_circle(dx, w)
            target[h - 1 + dy, w - 1 + dx] += 1
    return same, diff


def test_locality_maps_match_brute_force():
    shape = (3, 5, 7)
    g = torch.Generator().manual_seed(13)
    mask = torch.rand(8, 3 * 5 * 7, generator=g) < 0.15
    s_sc, s_dc = locality_maps(mask, shape)
    same, diff = _brute_force_locality(mask, shape)
    assert s_sc.shape == s_dc.shape == (9, 13) and s_sc.dtype == torch.int64
    np.testing.assert_array_equal(s_sc.numpy(), same)
    np.testing.assert_array_equal(s_dc.numpy(), diff)
    n = mask.sum(1)
    assert int(s_sc.sum() + s_dc.sum()) == int((n * (n - 1)).sum())


def test_locality_maps_wrap_displacements_across_the_edge_of_a_torus_only():
    shape = (1, 4, 6)
    mask = _mask(shape, [[(0, 2, 0), (0, 2, 5)]])  # the same row, first and last column
    centre = (3, 5)
    torus, _ = locality_maps(mask, shape, periodic=True)
    assert torus[centre[0], centre[1] + 1] == 1 and torus[centre[0], centre[1] - 1] == 1  # dx = ±1
    assert torus.sum() == 2
    plane, _ = locality_maps(mask, shape)  # the default: no wrap-around
    assert plane[centre[0], centre[1] + 5] == 1 and plane[centre[0], centre[1] - 5] == 1  # dx = ±(W − 1)
    assert plane.sum() == 2
    assert near_pair_fraction(torus, 1) == 1.0 and near_pair_fraction(plane, 1) == 0.0


@pytest.mark.parametrize("shape", [(2, 6, 5), (3, 5, 8)])  # even and odd sides: ties at |d| = L/2
def test_periodic_locality_maps_match_brute_force_on_the_torus(shape):
    c, h, w = shape
    g = torch.Generator().manual_seed(14)
    mask = torch.rand(6, c * h * w, generator=g) < 0.2
    s_sc, s_dc = locality_maps(mask, shape, periodic=True)
    same, diff = _brute_force_locality(mask, shape, periodic=True)
    assert s_sc.shape == (2 * h - 1, 2 * w - 1) and s_sc.dtype == torch.int64
    np.testing.assert_array_equal(s_sc.numpy(), same)
    np.testing.assert_array_equal(s_dc.numpy(), diff)
    for s in (s_sc, s_dc):
        assert torch.equal(s, s.flip(0, 1))  # symmetric: (a, b) and (b, a)
        dy = torch.arange(2 * h - 1)[:, None] - (h - 1)
        dx = torch.arange(2 * w - 1)[None, :] - (w - 1)
        assert int(s[(2 * dy.abs() > h) | (2 * dx.abs() > w)].sum()) == 0  # only shortest displacements
    n = mask.sum(1)
    assert int(s_sc.sum() + s_dc.sum()) == int((n * (n - 1)).sum())


def test_locality_maps_orientation_and_channel_split():
    shape = (2, 4, 4)
    # Channel 0: (1, 1) and (1, 3); channel 1: (2, 1), the pixel below (1, 1).
    s_sc, s_dc = locality_maps(_mask(shape, [[(0, 1, 1), (0, 1, 3), (1, 2, 1)]]), shape)
    centre = (3, 3)
    assert s_sc[centre[0], centre[1] + 2] == 1 and s_sc[centre[0], centre[1] - 2] == 1
    assert s_sc.sum() == 2
    assert s_dc[centre[0] + 1, centre[1]] == 1 and s_dc[centre[0] + 1, centre[1] - 2] == 1
    assert s_dc.sum() == 4


def test_near_pair_fraction_counts_pairs_within_the_radius():
    shape = (1, 4, 4)
    # (1, 1)-(1, 2) one pixel apart, (1, 1)-(3, 3) and (1, 2)-(3, 3) farther: 2 of 6 ordered pairs near.
    s_sc, s_dc = locality_maps(_mask(shape, [[(0, 1, 1), (0, 1, 2), (0, 3, 3)]]), shape)
    assert near_pair_fraction(s_sc + s_dc, 1) == pytest.approx(2 / 6)
    assert near_pair_fraction(s_sc + s_dc, 2.3) == pytest.approx(4 / 6)  # |(2, 1)| = 2.24
    assert near_pair_fraction(s_sc + s_dc, 3) == pytest.approx(1.0)
    assert math.isnan(near_pair_fraction(torch.zeros(7, 7, dtype=torch.int64), 1))


# ---------------------------------------------------------------------- connection counts


def test_binomial_null_and_connection_counts():
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert connections_per_unit(mask).tolist() == [3, 0, 4]
    null = binomial_null(int(mask.sum()), units=3, inputs=4)
    assert null.shape == (5,)
    assert null.sum().item() == pytest.approx(3.0)
    assert (null * torch.arange(5)).sum().item() == pytest.approx(7.0)  # expected total
    np.testing.assert_allclose(null.numpy(), 3 * scipy.stats.binom.pmf(range(5), 4, 7 / 12))
    with pytest.raises(ValueError):
        binomial_null(13, units=3, inputs=4)


def test_average_receptive_field_aligns_blobs_on_their_centres_also_across_the_torus_edge():
    """Two 3×3 blobs, one inside the image, one wrapping around its corner on the torus, give one 3×3
    block of ones at the centre; a unit below min_weights is left out; the entries sum to the mean count."""
    h = w = 8
    blobs = torch.zeros(3, h, w, dtype=torch.bool)
    blobs[0, 2:5, 3:6] = True
    blobs[1, [7, 7, 7, 0, 0, 0, 1, 1, 1], [7, 0, 1] * 3] = True  # rows 7, 0, 1 x columns 7, 0, 1
    blobs[2, 0, 0] = True  # one pixel: below min_weights
    field = average_receptive_field(blobs.reshape(3, -1), (1, h, w), periodic=True)
    expected = torch.zeros(2 * h - 1, 2 * w - 1, dtype=torch.float64)
    expected[h - 2 : h + 1, w - 2 : w + 1] = 1.0
    assert torch.equal(field, expected) and field.sum() == 9
    assert near_centre_share(field, radius=1) == 1.0
    inside = average_receptive_field(blobs[:1].reshape(1, -1), (1, h, w), periodic=False)
    assert torch.equal(inside, expected)


def test_average_receptive_field_of_random_masks_is_flat_and_of_blobs_is_peaked():
    g = torch.Generator().manual_seed(0)
    h = w = 16
    scattered = torch.rand(200, h * w, generator=g) < 9 / (h * w)
    blobs = torch.zeros(200, h, w, dtype=torch.bool)
    for unit, (y, x) in enumerate(torch.randint(0, h - 3, (200, 2), generator=g).tolist()):
        blobs[unit, y : y + 3, x : x + 3] = True
    for periodic in (True, False):
        local = near_centre_share(average_receptive_field(blobs.reshape(200, -1), (1, h, w), periodic=periodic))
        spread = near_centre_share(average_receptive_field(scattered, (1, h, w), periodic=periodic))
        assert local == 1.0 and spread < 0.4, (periodic, spread)
