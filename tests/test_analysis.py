"""The analysis behind Figs. 4B and 5B-C: kurtosis per level, cavity scores by removal round, |W| controls."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

from imprf_utils.analysis import (
    connection_summary,
    cavity_by_removal_round,
    cavity_tables,
    cavity_within_magnitude_bins,
    first_layer,
    first_layer_inputs,
    kurtosis_summary,
    level_summary,
    removal_magnitude_control,
    rewind_cavity_scores,
    split_half_se,
)
from conftest import CONFIG



def class_non_gaussianity(h: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Oracle: mean over classes of |κ_c − 3| per column, with SciPy's Pearson kurtosis."""
    return np.mean([np.abs(scipy.stats.kurtosis(h[labels == c], axis=0, fisher=False) - 3) for c in np.unique(labels)], axis=0)


# --- Fig. 4B ----------------------------------------------------------------------------


def test_kurtosis_summary_is_the_mean_class_kurtosis_of_scipy(experiment):
    table = kurtosis_summary([experiment])
    expected = ["imp"] * 4 + ["oneshot"] * 2 + ["random"] * 2
    assert table.method.tolist() == expected
    assert table.level.tolist() == [0, 1, 2, 3, 1, 3, 1, 3]
    row = table[(table.method == "oneshot") & (table.level == 3)].iloc[0]
    weight, _ = first_layer(experiment, "oneshot_3")
    x, labels = first_layer_inputs(experiment, "oneshot_3")
    h, y = (x @ weight.T).double().numpy(), labels.numpy()
    per_class = np.stack([scipy.stats.kurtosis(h[y == c], axis=0, fisher=False) for c in np.unique(y)])
    assert row.kurtosis_mean == pytest.approx(np.nanmean(per_class.mean(0)), rel=1e-9)
    assert row["kurtosis"] == pytest.approx(np.nanmean(class_non_gaussianity(h, y)), rel=1e-9)
    assert row.data == "data" and row.seed == CONFIG.seed


def test_kurtosis_summary_agrees_with_level_summary_and_its_control(experiment):
    table = kurtosis_summary([experiment], samples=500, seed=3)
    reference = level_summary(experiment, kurtosis_samples=500, seed=3)
    columns = ["kurtosis", "kurtosis_shuffled", "kurtosis_excess"]
    np.testing.assert_allclose(table[columns].to_numpy(), reference[columns].to_numpy(), rtol=1e-6)
    assert (table.kurtosis_shuffled != table["kurtosis"]).any()  # the control moves the weights


def test_kurtosis_summary_selects_levels_and_test_rows(experiment):
    table = kurtosis_summary([experiment], samples=slice(1, None, 2), levels=[0, 3])
    assert list(zip(table.method, table.level)) == [("imp", 0), ("imp", 3), ("oneshot", 3), ("random", 3)]
    weight, _ = first_layer(experiment, "level_3")
    x, labels = first_layer_inputs(experiment, "level_3")
    h, y = (x[1::2] @ weight.T).double().numpy(), labels[1::2].numpy()
    assert table["kurtosis"][1] == pytest.approx(np.nanmean(class_non_gaussianity(h, y)), rel=1e-9)


def test_split_half_se():
    # halves differing by ±d around the whole-sample value: SE = d / 2
    assert split_half_se([1.0, 2.0], [1.0 + 0.4, 2.0 - 0.4]) == pytest.approx(0.2)
    assert split_half_se([3.0], [3.0]) == 0.0
    rng = np.random.default_rng(0)  # mean of n draws: SE of the whole = 1/sqrt(n)
    halves = rng.normal(size=(2, 4000, 200)).mean(axis=2)
    assert split_half_se(*halves) == pytest.approx(1 / np.sqrt(400), rel=0.05)
    with pytest.raises(ValueError, match="equal"):
        split_half_se([1.0], [1.0, 2.0])


# --- Fig. 5B-C --------------------------------------------------------------------------


def test_rewind_cavity_scores_brute_force_on_the_rewind_weights(experiment):
    scores, weight = rewind_cavity_scores(experiment, "level_2")
    rewind = experiment.run.load("level_0", "rewind")["weights.0"][0]
    assert torch.equal(weight, rewind)  # θ(t_rewind), not the trained weights
    mask = experiment.masks("level_2")[0]
    assert bool(scores[~mask].isnan().all()) and not bool(scores[mask].isnan().any())

    _, test_ds = experiment.data
    x = test_ds.x.flatten(1).double().numpy()  # float data, no BatchNorm: the layer sees x
    y = test_ds.y.numpy()
    w = (rewind * mask).double().numpy()
    h = x @ w.T
    base = class_non_gaussianity(h, y)
    units, inputs = torch.nonzero(mask)[:: max(1, int(mask.sum()) // 25)].T.tolist()
    for i, j in zip(units, inputs):
        cut = h[:, i] - w[i, j] * x[:, j]
        brute = class_non_gaussianity(cut[:, None], y)[0] - base[i]
        assert float(scores[i, j]) == pytest.approx(brute, abs=1e-8)


def test_cavity_by_removal_round_holds_the_weights_present_at_each_level(experiment):
    table = cavity_by_removal_round(experiment)
    removal = experiment.removal_round(0)
    assert sorted(table.level.unique()) == [0, 1, 2, 3]
    for k in range(4):
        rows = table[table.level == k]
        assert len(rows) == int(experiment.masks(f"level_{k}")[0].sum())
        assert (rows.removal_round > k).all()
        assert np.array_equal(np.bincount(rows.removal_round, minlength=5), np.bincount(removal[removal > k], minlength=5))
    scores, weight = rewind_cavity_scores(experiment, "level_0")
    level0 = table[table.level == 0]
    np.testing.assert_array_equal(level0.score.to_numpy(), scores.flatten().numpy())
    np.testing.assert_array_equal(level0.abs_weight.to_numpy(), weight.abs().double().flatten().numpy())
    np.testing.assert_array_equal(level0.removal_round.to_numpy(), removal.flatten().numpy())


def test_cavity_tables_label_data_and_seed_and_take_test_rows(experiment):
    table = cavity_tables([experiment], levels=[1], samples=slice(0, None, 2))
    assert set(table.data) == {"data"} and set(table.seed) == {CONFIG.seed} and set(table.level) == {1}
    scores, _ = rewind_cavity_scores(experiment, "level_1", samples=slice(0, None, 2))
    mask = experiment.masks("level_1")[0]
    np.testing.assert_array_equal(table.score.to_numpy(), scores[mask].numpy())
    full, _ = rewind_cavity_scores(experiment, "level_1")
    assert not np.allclose(table.score.to_numpy(), full[mask].numpy(), equal_nan=True)


# --- the |W| control --------------------------------------------------------------------


def synthetic_weights(score_of, n=20_000, rounds=10, seed=0) -> pd.DataFrame:
    """Weights whose removal round follows |W| with noise, and a score given by ``score_of``."""
    rng = np.random.default_rng(seed)
    w = np.abs(rng.normal(size=n))
    noisy = w + 0.3 * rng.normal(size=n)
    removal = 1 + np.minimum((scipy.stats.rankdata(noisy) / n * (rounds + 1)).astype(int), rounds)
    return pd.DataFrame(dict(level=0, removal_round=removal, abs_weight=w, score=score_of(w, removal, rng)))


def test_control_sees_nothing_when_the_score_is_a_function_of_magnitude():
    table = synthetic_weights(lambda w, r, rng: -w + 0.01 * rng.normal(size=w.size))
    control = removal_magnitude_control(table)
    assert control["rho_round_weight"] > 0.8  # magnitude predicts removal
    assert control["rho_score_round"] < -0.8  # so the score "predicts" it too
    assert abs(control["partial_score_round"]) < 0.05  # but nothing beyond magnitude
    bins = cavity_within_magnitude_bins(table, split=5)
    assert len(bins) == 10 and bins.early_count.sum() + bins.late_count.sum() == len(table)
    assert (bins.weight_low.diff().dropna() > 0).all()
    raw = table.score[table.removal_round <= 5].mean() - table.score[table.removal_round > 5].mean()
    assert raw > 0.5
    assert np.nanmax(np.abs(bins.difference)) < 0.1 * raw  # bins remove the magnitude effect


def test_control_finds_a_score_that_predicts_removal_beyond_magnitude():
    table = synthetic_weights(lambda w, r, rng: np.where(r <= 5, 1.0, -1.0) + 0.1 * rng.normal(size=w.size))
    assert removal_magnitude_control(table)["partial_score_round"] < -0.3
    bins = cavity_within_magnitude_bins(table, split=5)
    defined = bins.difference.dropna()
    assert len(defined) >= 3
    np.testing.assert_allclose(defined, 2.0, atol=0.05)


def test_bins_leave_out_nan_scores_and_small_groups():
    table = pd.DataFrame(
        dict(level=0, removal_round=[1] * 30 + [6] * 30 + [1] * 5, abs_weight=np.arange(65.0), score=[1.0] * 30 + [0.0] * 29 + [np.nan] + [2.0] * 5)
    )
    bins = cavity_within_magnitude_bins(table, split=5, bins=2, min_count=6)
    assert bins.early_count.sum() + bins.late_count.sum() == 64  # the NaN score is dropped
    assert bins.early_count.tolist() == [30, 5] and bins.late_count.tolist() == [2, 27]
    assert bins.difference.isna().all()  # every bin holds fewer than 6 of one group
    kept = table.drop(index=59)
    expected = scipy.stats.spearmanr(kept.score, kept.removal_round).statistic
    assert removal_magnitude_control(table)["rho_score_round"] == pytest.approx(expected)


def test_control_is_nan_when_only_one_removal_round_is_left():
    table = synthetic_weights(lambda w, r, rng: rng.normal(size=w.size)).assign(removal_round=11)
    assert all(np.isnan(v) for v in removal_magnitude_control(table).values())


def test_connection_summary_has_the_binomial_null_and_a_placement_control(experiment):
    table = connection_summary(experiment)
    assert len(table) == len(experiment.level_names("imp")) + 2 * len(experiment.config.compare_levels)
    dense = table[(table.method == "imp") & (table.level == 0)].iloc[0]
    assert dense.empty == 0 and dense.empty_null == 0 and np.isnan(dense.dispersion)
    sparse = table[table.level > 0]
    assert ((sparse.near_pairs > 0) & (sparse.near_pairs < 1)).all()
    assert np.allclose(sparse.near_pair_ratio, sparse.near_pairs / sparse.near_pairs_shuffled)
    random = table[table.method == "random"]
    # random masks keep a uniformly random subset of the layer: binomial counts within noise
    assert (random.dispersion.between(0.5, 1.6)).all()
