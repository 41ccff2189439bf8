"""Fig. 5B-C: cavity scores by removal round, oneshot's order as the null, matched pairs of equal |W|."""

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

from imprf_utils.notebooks.cavity import (
    cavity_by_removal_round,
    cavity_statistics,
    cavity_tables,
    matched_pair_difference,
    oneshot_removal_round,
    removal_group_means,
    rewind_cavity_scores,
)
from imprf_utils.training.pruning import top_magnitude_masks
from conftest import CONFIG, class_non_gaussianity


# --- per-weight tables --------------------------------------------------------------------


def test_rewind_cavity_scores_brute_force_on_the_rewind_weights(experiment):
    scores, weight = rewind_cavity_scores(experiment, ("imp", 2))
    rewind = experiment.load(("imp", 0), "rewind")["weights.0"][0]
    assert torch.equal(weight, rewind)  # θ(t_rewind), not the trained weights
    mask = experiment.masks(("imp", 2))[0]
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


def test_oneshot_removal_round_reproduces_the_stored_oneshot_masks(experiment):
    oneshot = oneshot_removal_round(experiment)
    imp = experiment.removal_round(0)
    assert torch.equal(torch.bincount(oneshot.flatten()), torch.bincount(imp.flatten()))  # IMP's group sizes
    assert torch.equal(oneshot == 1, imp == 1)  # round 1 prunes the dense trained weights in both
    dense = experiment.model(("imp", 0)).weights[0][0].detach()
    for k in CONFIG.compare_levels:  # the masks oneshot pruning trained with, and pruning's own rule
        kept = experiment.masks(("oneshot", k))[0]
        assert torch.equal(oneshot > k, kept)
        assert torch.equal(oneshot > k, top_magnitude_masks([dense], [int(kept.sum())])[0])
    assert not torch.equal(oneshot, imp)  # iterating changes the order after round 1


def test_cavity_by_removal_round_holds_the_weights_present_at_each_level(experiment):
    table = cavity_by_removal_round(experiment)
    removal = experiment.removal_round(0)
    assert sorted(table.level.unique()) == [0, 1, 2, 3]
    for k in range(4):
        rows = table[table.level == k]
        assert len(rows) == int(experiment.masks(("imp", k))[0].sum())
        assert (rows.removal_round > k).all()
        assert np.array_equal(np.bincount(rows.removal_round, minlength=5), np.bincount(removal[removal > k], minlength=5))
    scores, weight = rewind_cavity_scores(experiment, ("imp", 0))
    level0 = table[table.level == 0]
    np.testing.assert_array_equal(level0.score.to_numpy(), scores.flatten().numpy())
    np.testing.assert_array_equal(level0.abs_weight.to_numpy(), weight.abs().double().flatten().numpy())
    np.testing.assert_array_equal(level0.removal_round.to_numpy(), removal.flatten().numpy())
    np.testing.assert_array_equal(level0.oneshot_round.to_numpy(), oneshot_removal_round(experiment).flatten().numpy())


def test_cavity_tables_label_data_and_seed_and_take_test_rows(experiment):
    table = cavity_tables([experiment], levels=[1], samples=slice(0, None, 2))
    assert set(table.data) == {"data"} and set(table.seed) == {CONFIG.seed} and set(table.level) == {1}
    scores, _ = rewind_cavity_scores(experiment, ("imp", 1), samples=slice(0, None, 2))
    mask = experiment.masks(("imp", 1))[0]
    np.testing.assert_array_equal(table.score.to_numpy(), scores[mask].numpy())
    full, _ = rewind_cavity_scores(experiment, ("imp", 1))
    assert not np.allclose(table.score.to_numpy(), full[mask].numpy(), equal_nan=True)


# --- matched pairs --------------------------------------------------------------------------


def brute_force_pairs(w, r, s, tolerance):
    """Oracle: every ordered pair, listed."""
    differences = [
        s[a] - s[b]
        for a, b in itertools.permutations(range(len(w)), 2)
        if r[a] < r[b] and w[a] / (1 + tolerance) <= w[b] <= w[a] * (1 + tolerance)
    ]
    return (float(np.mean(differences)) if differences else float("nan")), len(differences)


def test_matched_pair_difference_is_the_mean_over_every_listed_pair():
    rng = np.random.default_rng(0)
    w = rng.choice([0.1, 0.2, 0.5, 1.0], size=150) * (1 + 0.02 * rng.random(150))  # clusters: many pairs
    r = rng.integers(1, 6, size=150)
    s = rng.normal(size=150)
    for tolerance in (0.005, 0.01, 0.05):
        difference, pairs = matched_pair_difference(w, r, s, tolerance=tolerance)
        expected, expected_pairs = brute_force_pairs(w, r, s, tolerance)
        assert pairs == expected_pairs > 0
        assert difference == pytest.approx(expected, rel=1e-12)
    difference, pairs = matched_pair_difference([1.0, 2.0, 1.001], [1, 1, 2], [0.0, 5.0, 3.0], tolerance=0.01)
    assert (difference, pairs) == (pytest.approx(-3.0), 1)  # only (1.0, round 1) with (1.001, round 2)
    assert np.isnan(matched_pair_difference([1.0, 2.0], [1, 2], [0.0, 1.0], tolerance=0.01)[0])


def test_matched_pairs_remove_magnitude_and_keep_an_effect_beyond_it():
    rng = np.random.default_rng(1)
    w = np.abs(rng.normal(size=20_000))
    r = 1 + np.minimum((scipy.stats.rankdata(w + 0.3 * rng.normal(size=w.size)) / w.size * 6).astype(int), 5)
    magnitude_only = -w  # the score falls with |W|, and so does the removal round
    raw = magnitude_only[r <= 3].mean() - magnitude_only[r > 3].mean()
    assert raw > 0.5
    assert abs(matched_pair_difference(w, r, magnitude_only, tolerance=0.01)[0]) < 0.01 * raw
    beyond = magnitude_only + 0.2 * (r <= 3)  # early-removed weights score 0.2 higher at equal |W|
    difference, _ = matched_pair_difference(w, r, beyond, tolerance=0.01)
    pairs_across = matched_pair_difference(w, (r > 3).astype(int), beyond, tolerance=0.01)
    assert 0 < difference < 0.2 and pairs_across[0] == pytest.approx(0.2, abs=0.01)


def test_matched_pair_difference_refuses_nan_and_a_bad_tolerance():
    with pytest.raises(ValueError, match="NaN"):
        matched_pair_difference([1.0, 1.0], [1, 2], [np.nan, 0.0], tolerance=0.01)
    with pytest.raises(ValueError, match="tolerance"):
        matched_pair_difference([1.0, 1.0], [1, 2], [0.0, 0.0], tolerance=0.0)
    with pytest.raises(ValueError, match="one length"):
        matched_pair_difference([1.0], [1, 2], [0.0, 0.0], tolerance=0.01)


# --- per-network statistics -----------------------------------------------------------------


def toy_table(seed=0, rounds=4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 400
    removal = rng.integers(1, rounds + 2, size=n)
    level0 = pd.DataFrame(dict(
        data="data", seed=seed, level=0, removal_round=removal, oneshot_round=rng.permutation(removal),
        abs_weight=rng.choice([0.5, 1.0], size=n) * (1 + 0.001 * rng.random(n)), score=rng.normal(size=n),
    ))
    level0.loc[::37, "score"] = np.nan
    level2 = level0[level0.removal_round > 2].assign(level=2, score=lambda t: t.score + 1)
    return pd.concat([level0, level2], ignore_index=True)


def test_cavity_statistics_of_a_table_with_known_groups():
    rounds = 4
    table = pd.concat([toy_table(0, rounds), toy_table(1, rounds)], ignore_index=True)
    stats = cavity_statistics(table, rounds=rounds, tolerance=0.01)
    assert list(zip(stats.seed, stats.level)) == [(0, 0), (0, 2), (1, 0), (1, 2)]
    for row in stats.itertuples():
        t = table[(table.seed == row.seed) & (table.level == row.level)].dropna(subset=["score"])
        r, s = t.removal_round.to_numpy(), t.score.to_numpy()
        assert row.early == pytest.approx(s[r <= 2].mean()) if row.level == 0 else np.isnan(row.early)
        assert row.late == pytest.approx(s[(r == 3) | (r == 4)].mean())
        assert row.survivors == pytest.approx(s[r == 5].mean()) and row.last_round == pytest.approx(s[r == 4].mean())
        assert row.largest_group == pytest.approx(max(abs(s[r == g].mean()) for g in np.unique(r)))
        assert row.rho_round_weight == pytest.approx(scipy.stats.spearmanr(r, t.abs_weight).statistic)
        expected, pairs = brute_force_pairs(t.abs_weight.to_numpy(), r, s, 0.01)
        assert (row.matched_imp, row.pairs) == (pytest.approx(expected), pairs)
        if row.level == 0:
            assert row.matched_oneshot == pytest.approx(brute_force_pairs(t.abs_weight.to_numpy(), t.oneshot_round.to_numpy(), s, 0.01)[0])
        else:
            assert np.isnan(row.matched_oneshot)
    means = removal_group_means(table)
    check = means[(means.seed == 1) & (means.level == 0) & (means.removal_round == 3)].score.item()
    t = table[(table.seed == 1) & (table.level == 0) & (table.removal_round == 3)]
    assert check == pytest.approx(t.score.dropna().mean())


def test_cavity_statistics_of_an_experiment(experiment):
    stats = cavity_statistics(cavity_tables([experiment]), rounds=CONFIG.rounds, tolerance=0.01)
    assert stats.level.tolist() == list(range(CONFIG.rounds + 1))
    first = stats.iloc[0]
    assert first.pairs > 0 and np.isfinite([first.matched_imp, first.matched_oneshot, first.rho_round_weight]).all()
    assert stats.iloc[-1].pairs == 0 and np.isnan(stats.iloc[-1].matched_imp)  # only survivors are left
