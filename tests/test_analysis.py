"""The analysis behind Fig. 4B and the notebooks' setup: kurtosis per level, per-network effects, the lagged test."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

from imprf_utils.data import Dataset
from imprf_utils.measures.shape import shuffle_positions
from imprf_utils.notebooks.kurtosis import (
    LAGGED_MIN_ROUNDS, gaussian_kurtosis_bound, kurtosis_summary, lagged_correlations, lagged_localization,
    partial_spearman,
)
from imprf_utils.notebooks.levels import connection_summary, level_summary, width_ratios
from imprf_utils.notebooks.runs import first_layer, first_layer_inputs, notebook_runs, per_seed, per_seed_spearman
from imprf_utils.training.config import ExperimentConfig
from conftest import CONFIG, TINY, class_non_gaussianity


# --- Fig. 4B ----------------------------------------------------------------------------


def test_kurtosis_summary_is_the_mean_class_kurtosis_of_scipy(experiment):
    table = kurtosis_summary([experiment])
    expected = ["imp"] * 4 + ["oneshot"] * 2 + ["random"] * 2
    assert table.method.tolist() == expected
    assert table.level.tolist() == [0, 1, 2, 3, 1, 3, 1, 3]
    row = table[(table.method == "oneshot") & (table.level == 3)].iloc[0]
    weight, _ = first_layer(experiment, ("oneshot", 3))
    x, labels = first_layer_inputs(experiment, ("oneshot", 3))
    h, y = (x @ weight.T).double().numpy(), labels.numpy()
    per_class = np.stack([scipy.stats.kurtosis(h[y == c], axis=0, fisher=False) for c in np.unique(y)])
    assert row.mean_kurtosis == pytest.approx(np.nanmean(per_class.mean(0)), rel=1e-9)
    assert row["non_gaussianity"] == pytest.approx(np.nanmean(class_non_gaussianity(h, y)), rel=1e-9)
    assert row.data == "data" and row.seed == CONFIG.seed


def test_the_shuffled_control_is_the_same_weights_at_random_positions(experiment):
    """Oracle: the control's value from shuffle_positions with the generator of ``control_seed``, level by level."""
    table = kurtosis_summary([experiment], samples=500, control_seed=3)
    generator = torch.Generator().manual_seed(3)
    for row in table.itertuples():
        weight, _ = first_layer(experiment, (row.method, row.level))
        x, labels = first_layer_inputs(experiment, (row.method, row.level), limit=500)
        h = (x @ shuffle_positions(weight, generator).T).double().numpy()
        assert row.non_gaussianity_shuffled == pytest.approx(np.nanmean(class_non_gaussianity(h, labels.numpy())), rel=1e-9)
        assert row.non_gaussianity_excess == row.non_gaussianity - row.non_gaussianity_shuffled
    assert (table.non_gaussianity_shuffled != table.non_gaussianity).any()  # the control moves the weights


def test_kurtosis_summary_selects_levels_and_test_rows(experiment):
    table = kurtosis_summary([experiment], samples=slice(1, None, 2), levels=[0, 3])
    assert list(zip(table.method, table.level)) == [("imp", 0), ("imp", 3), ("oneshot", 3), ("random", 3)]
    weight, _ = first_layer(experiment, ("imp", 3))
    x, labels = first_layer_inputs(experiment, ("imp", 3))
    h, y = (x[1::2] @ weight.T).double().numpy(), labels[1::2].numpy()
    assert table["non_gaussianity"][1] == pytest.approx(np.nanmean(class_non_gaussianity(h, y)), rel=1e-9)


def test_connection_summary_has_the_binomial_null_and_a_placement_control(experiment):
    table = connection_summary(experiment)
    assert len(table) == len(experiment.levels("imp")) + 2 * len(experiment.config.compare_levels)
    dense = table[(table.method == "imp") & (table.level == 0)].iloc[0]
    assert dense.empty == 0 and dense.empty_null == 0 and np.isnan(dense.dispersion)
    sparse = table[table.level > 0]
    assert ((sparse.near_pairs > 0) & (sparse.near_pairs < 1)).all()
    assert np.allclose(sparse.near_pair_ratio, sparse.near_pairs / sparse.near_pairs_shuffled)
    random = table[table.method == "random"]
    # random masks keep a uniformly random subset of the layer: binomial counts within noise
    assert (random.dispersion.between(0.5, 1.6)).all()


# --- the notebooks' setup ---------------------------------------------------------------


def notebook_parameters(tmp_path, **changes) -> dict:
    """A notebook's parameters after papermill's injection: TINY's fields plus the notebook-only ones."""
    fields = {k: v for k, v in TINY.as_dict().items() if k not in ("seed", "clone")}
    return {
        **fields,
        "hidden": list(TINY.hidden),
        "compare_levels": list(TINY.compare_levels),
        "preset": "smoke",
        "seeds": [0, 1],
        "clone_compare_levels": [2],
        "run_store": str(tmp_path / "runs"),
        "device": "cpu",
        "figures_dir": str(tmp_path / "figures"),
        "rounds": TINY.rounds,
        **changes,
    }


def test_notebook_runs_builds_data_and_clone_experiments_per_seed_and_the_figures_context(tmp_path):
    runs = notebook_runs(notebook_parameters(tmp_path, unrelated_parameter=3), "04")
    assert [e.config for e in runs.data] == [dataclasses.replace(TINY, seed=s) for s in (0, 1)]
    assert [e.config for e in runs.clone] == [dataclasses.replace(TINY, seed=s, clone=True, compare_levels=(2,)) for s in (0, 1)]
    assert runs.experiments == runs.data + runs.clone
    assert all(not e.missing_levels() for e in runs.experiments)  # trained into the given store
    assert all(str(e.run.path).startswith(str(tmp_path / "runs")) for e in runs.experiments)
    ctx = runs.figures
    assert (ctx.dataset, ctx.root, ctx.notebook, ctx.preset, list(ctx.seeds)) == ("skewed_texture", tmp_path / "figures", "04", "smoke", [0, 1])
    assert ctx.params["seeds"] == [0, 1] and ExperimentConfig.from_dict(
        {k: v for k, v in ctx.params.items() if k != "seeds"}
    ) == runs.data[0].config


def test_notebook_runs_names_a_missing_parameter(tmp_path):
    parameters = notebook_parameters(tmp_path)
    del parameters["clone_compare_levels"]
    with pytest.raises(KeyError, match="clone_compare_levels"):
        notebook_runs(parameters, "04")


# --- per-network effects ----------------------------------------------------------------


def effects_table() -> pd.DataFrame:
    return pd.DataFrame(
        dict(
            seed=[1, 0, 1, 0, 0, 1, 2],
            method=["imp", "imp", "random", "random", "imp", "imp", "random"],
            level=[2, 2, 2, 2, 0, 0, 2],
            value=[5.0, 3.0, 1.0, 2.0, 0.5, np.nan, 9.0],
        )
    )


def test_per_seed_selects_one_row_per_seed_and_pairs_differences_by_seed():
    table = effects_table()
    imp = per_seed(table, "value", method="imp", level=2)
    assert imp.index.tolist() == [0, 1] and imp.tolist() == [3.0, 5.0]
    random = per_seed(table, "value", method="random", level=2)
    assert random.to_dict() == {0: 2.0, 1: 1.0, 2: 9.0}
    difference = imp - random  # seed 2 has no IMP row: NaN, which a Claim refuses
    assert difference[0] == 1.0 and difference[1] == 4.0 and np.isnan(difference[2])


def test_per_seed_reduces_several_rows_only_when_asked():
    table = effects_table()
    with pytest.raises(ValueError, match="agg="):
        per_seed(table, "value", method="imp")
    assert per_seed(table, "value", agg="max", method="imp").to_dict() == {0: 3.0, 1: 5.0}
    assert per_seed(table, "value", agg="mean", method="imp").to_dict() == {0: 1.75, 1: 5.0}  # NaN skipped
    with pytest.raises(KeyError, match="methods"):
        per_seed(table, "value", methods="imp")
    with pytest.raises(ValueError, match="no rows"):
        per_seed(table, "value", method="oneshot")


def test_per_seed_spearman_is_scipys_per_seed():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=40).astype(float)  # ties: average ranks
    y = x + rng.normal(size=40)
    table = pd.DataFrame(dict(seed=np.repeat([3, 1], 20), x=x, y=y, keep=np.tile([True, False], 20)))
    rho = per_seed_spearman(table, "x", "y")
    assert rho.index.tolist() == [1, 3]
    assert rho[3] == pytest.approx(scipy.stats.spearmanr(x[:20], y[:20]).statistic)
    assert rho[1] == pytest.approx(scipy.stats.spearmanr(x[20:], y[20:]).statistic)
    kept = per_seed_spearman(table, "x", "y", keep=True)
    assert kept[3] == pytest.approx(scipy.stats.spearmanr(x[:20:2], y[:20:2]).statistic)


def test_gaussian_kurtosis_bound_is_twice_the_sampling_sd_of_a_gaussian_kappa():
    n = 2000
    kappas = scipy.stats.kurtosis(np.random.default_rng(1).normal(size=(3000, n)), axis=1, fisher=False)
    labels = torch.tensor([0] * n + [1] * (n + 500))  # the smallest class sets n
    data = Dataset(torch.zeros(len(labels), 1, 2, 2), labels, 2, "toy")
    assert gaussian_kurtosis_bound(data) == pytest.approx(2 * kappas.std(), rel=0.1)
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_kurtosis_bound(Dataset(torch.zeros(3, 1, 2, 2), torch.tensor([0, 0, 1]), 2, "toy"))


# --- the lagged test of Fig. 4 ------------------------------------------------------------


def test_width_ratios_are_level_summarys(experiment):
    table = width_ratios([experiment], control_seed=2)
    reference = level_summary(experiment, kurtosis_samples=200, control_seed=2)
    assert list(zip(table.method, table.level)) == list(zip(reference.method, reference.level))
    np.testing.assert_array_equal(table.rf_width_ratio.to_numpy(), reference.rf_width_ratio.to_numpy())
    assert set(table.data) == {"data"} and set(table.seed) == {CONFIG.seed}


def imp_tables(excess, ratio, *, data="data", seed=0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``kurtosis_summary`` and ``width_ratios`` rows of one network's IMP levels 0, 1, …: e(k) and r(k)."""
    index = pd.DataFrame(dict(data=data, seed=seed, method="imp", level=range(len(excess))))
    return index.assign(non_gaussianity_excess=list(excess)), index.assign(rf_width_ratio=list(ratio))


def networks(series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``imp_tables`` of several networks, (e, r) pairs, seeds 0, 1, …, stacked."""
    tables = [imp_tables(e, r, seed=seed) for seed, (e, r) in enumerate(series)]
    return pd.concat([k for k, _ in tables], ignore_index=True), pd.concat([w for _, w in tables], ignore_index=True)


def test_lagged_localization_pairs_each_rounds_changes_with_the_next_rounds():
    rng = np.random.default_rng(2)
    keys = [(which, seed, method, level) for which in ("data", "clone") for seed in (0, 1)
            for method, levels in (("imp", range(5)), ("random", [3, 4])) for level in levels]
    index = pd.DataFrame(keys, columns=["data", "seed", "method", "level"])
    kurtosis = index.assign(non_gaussianity_excess=rng.normal(size=len(index)))
    widths = index.assign(rf_width_ratio=rng.uniform(0.5, 1, size=len(index))).sample(frac=1, random_state=0)
    lag = lagged_localization(kurtosis, widths)
    assert len(lag) == 2 * 2 * 3 and set(lag.level) == {1, 2, 3}  # levels 1, 2, 3 have both neighbours; random has none
    for row in lag.itertuples():
        def at(table, column, level):
            rows = table[(table.data == row.data) & (table.seed == row.seed) & (table.method == "imp") & (table.level == level)]
            return float(rows[column].iloc[0])
        e = {k: at(kurtosis, "non_gaussianity_excess", k) for k in (row.level - 1, row.level, row.level + 1)}
        r = {k: at(widths, "rf_width_ratio", k) for k in (row.level - 1, row.level, row.level + 1)}
        assert row.excess == e[row.level]
        assert row.excess_change == pytest.approx(e[row.level] - e[row.level - 1])
        assert row.localization_next == pytest.approx(r[row.level] - r[row.level + 1])
        assert row.localization == pytest.approx(r[row.level - 1] - r[row.level])
        assert row.excess_change_next == pytest.approx(e[row.level + 1] - e[row.level])


def test_partial_spearman_of_the_lagged_test_is_the_formula_by_hand():
    """Ranks x = 2 1 3 5 4, y = 1 3 2 4 5 against k = 1 … 5: ρ = 1 − 6Σd²/(n(n² − 1)) = 1 − Σd²/20 gives
    ρ_xk = 0.8, ρ_yk = 0.9, ρ_xy = 0.6, so ρ_xy·k = (0.6 − 0.8 · 0.9) / √((1 − 0.8²)(1 − 0.9²)) = −0.12 / √0.0684."""
    x, y, k = [20.0, 10.0, 30.0, 50.0, 40.0], [0.1, 0.3, 0.2, 0.4, 0.5], [1, 2, 3, 4, 5]
    assert partial_spearman(pd.Series(x), pd.Series(y), pd.Series(k)) == pytest.approx(-0.12 / np.sqrt(0.0684), rel=1e-12)


def test_partial_spearman_of_the_lagged_test_is_scipys_rhos_combined_with_ties():
    rng = np.random.default_rng(3)
    k = np.repeat(np.arange(6), 2)  # ties in the given variable too
    x, y = k + rng.normal(size=12), np.round(k + rng.normal(size=12))
    r = {pair: scipy.stats.spearmanr(a, b).statistic for pair, (a, b) in {"xy": (x, y), "xk": (x, k), "yk": (y, k)}.items()}
    expected = (r["xy"] - r["xk"] * r["yk"]) / np.sqrt((1 - r["xk"] ** 2) * (1 - r["yk"] ** 2))
    assert partial_spearman(pd.Series(x), pd.Series(y), pd.Series(k)) == pytest.approx(expected, rel=1e-10)


def test_partial_spearman_of_the_lagged_test_is_undefined_with_three_values_and_0_when_k_says_it_all():
    k = pd.Series([1, 2, 3, 4, 5])
    assert np.isnan(partial_spearman(pd.Series([1.0, 3.0, 2.0]), pd.Series([2.0, 1.0, 3.0]), k[:3]))
    y = pd.Series([0.3, 0.1, 0.2, 0.5, 0.4])
    assert partial_spearman(k**2, y, k) == 0.0 and partial_spearman(y, 10 - k, k) == 0.0  # monotone in k: nothing left
    assert partial_spearman(pd.Series([4.0, 1.0, 3.0, 5.0, 2.0]), y, k) != 0.0


def test_lagged_correlations_of_a_hand_computed_network():
    """e = 0 2 3 6 11 15 21 and localization per round L(k) = r(k − 1) − r(k) = .005 .01 .03 .02 .04 .05.
    Lead, k = 1 … 5: Δe(k) = 2 1 3 5 4 against L(k + 1) = .01 .03 .02 .04 .05, the ranks of the case
    by hand above. Reverse: L(k) = .005 .01 .03 .02 .04 against Δe(k + 1) = 1 3 5 4 6, both ranked 1 2 4 3 5:
    ρ_xy = 1, ρ_xk = ρ_yk = 0.9, so ρ_xy·k = (1 − 0.81) / (1 − 0.81) = 1. Trend-laden: e(k) = 2 3 6 11 15
    (ranks 1 … 5) against L(k + 1): ρ = 0.9."""
    drops = [0.005, 0.01, 0.03, 0.02, 0.04, 0.05]
    kurtosis, widths = imp_tables([0, 2, 3, 6, 11, 15, 21], 1 - np.cumsum([0, *drops]))
    rho = lagged_correlations(lagged_localization(kurtosis, widths))
    assert rho[["data", "seed", "pairs"]].values.tolist() == [["data", 0, 5]]
    row = rho.iloc[0]
    assert row.lead == pytest.approx(-0.12 / np.sqrt(0.0684), rel=1e-12)
    assert row.reverse == pytest.approx(1.0, rel=1e-12)
    assert row.trend_laden == pytest.approx(0.9, rel=1e-12)


def accelerating_networks(count: int, lead: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Networks of 10 IMP rounds whose excess rises and RF width ratio falls ever faster with k, as in Fig. 4:
    e(k) = 3 + 0.05 k² and r(k) = 1 − 0.004 k², plus independent noise; with ``lead`` > 0 the noise of what
    round k does to the excess is also added, times ``lead``, to the localization of round k + 1."""
    rng = np.random.default_rng(seed)
    k = np.arange(11)
    series = []
    for _ in range(count):
        steps = 0.1 + 0.3 * rng.normal(size=11)  # Δe's noise, round by round
        e = 3 + 0.05 * k**2 + np.concatenate([[0], np.cumsum(steps[1:])])
        pushed = np.concatenate([[0, 0], lead * 0.02 * steps[1:-1]])  # round k's Δe noise moves round k + 1's drop
        r = 1 - 0.004 * k**2 - np.cumsum(pushed) + 0.004 * rng.normal(size=11)
        series.append((e, r))
    return networks(series)


def test_a_trend_shared_with_the_round_gives_the_old_reading_a_high_rho_and_the_lagged_test_none():
    lag = lagged_localization(*accelerating_networks(100, lead=0.0, seed=4))
    rho = lagged_correlations(lag)
    assert rho.trend_laden.mean() > 0.9  # the reading of issue 25: the trend alone
    assert abs(rho.lead.mean()) < 0.1 and abs(rho.reverse.mean()) < 0.1
    differences_only = per_seed_spearman(lag, "excess_change", "localization_next")
    assert differences_only.mean() > 0.5  # why the test ranks given k: the changes trend with k too


def test_a_real_lead_shows_in_the_lagged_test_and_not_in_the_reverse_lag():
    rho = lagged_correlations(lagged_localization(*accelerating_networks(100, lead=1.0, seed=4)))
    assert rho.lead.mean() > 0.3
    assert abs(rho.reverse.mean()) < 0.1


def test_lagged_localization_of_an_experiment(experiment):
    lag = lagged_localization(kurtosis_summary([experiment], samples=300), width_ratios([experiment]))
    assert lag.level.tolist() == list(range(1, CONFIG.rounds))
    assert np.isfinite(lag.drop(columns=["data", "seed", "level"]).to_numpy()).all()
    rho = lagged_correlations(lag)
    assert rho.pairs.tolist() == [CONFIG.rounds - 1] and np.isnan(rho.lead).all()  # fewer than LAGGED_MIN_ROUNDS
    assert CONFIG.rounds < LAGGED_MIN_ROUNDS
