"""Notebook 04: the kurtosis of first-layer pre-activations per level (Fig. 4B), with its control, and the lagged test.

``kurtosis_summary``: mean κ and |κ − 3| per stored level, against the same weights at random
input positions (``non_gaussianity_excess``); ``lagged_localization`` and ``lagged_correlations``:
does what a round did to IMP's excess lead the localization of the next round (Fig. 4's reading)?
"""

from __future__ import annotations

import math
from collections.abc import Collection

import pandas as pd
import torch

from imprf_utils.data import Dataset
from imprf_utils.measures.preactivations import class_kurtosis, non_gaussianity
from imprf_utils.measures.shape import shuffle_positions
from imprf_utils.notebooks.runs import per_experiment
from imprf_utils.training.experiment import Experiment


NON_GAUSSIANITY_COLUMNS = ("non_gaussianity", "non_gaussianity_shuffled", "non_gaussianity_excess")


@torch.no_grad()
def kurtosis_summary(
    experiments: list[Experiment],
    *,
    samples: int | slice | None = None,
    levels: Collection[int] | None = None,
    control_seed: int | None = None,
) -> pd.DataFrame:
    """Kurtosis of first-layer pre-activations at every stored level, with its control (Fig. 4B).

    One row per experiment and stored level (only those at ``levels`` IMP rounds of
    sparsity, if given), columns data ("data"/"clone"), seed, method, level, kept and,
    for h = x (W ⊙ M)ᵀ over the test images ``samples`` (an int: the first so many; a
    slice: those rows; None: all):

    - ``mean_kurtosis``: mean over units of (1/K) Σ_c κ_c(h_i), the y axis of Redman et
      al. Fig. 4B (3 for a Gaussian); units with every weight pruned (constant h) left out;
    - ``non_gaussianity``: mean over units of (1/K) Σ_c |κ_c(h_i) − 3|;
    - ``non_gaussianity_shuffled``: the same with each unit's weights at random input
      positions (``shuffle_positions``; one generator per experiment seeded with
      ``control_seed``, None: the network's seed, drawn level by level), and ``non_gaussianity_excess`` = the
      difference.
    """
    return per_experiment(kurtosis_rows, experiments, samples=samples, levels=levels, control_seed=control_seed)


@torch.no_grad()
def kurtosis_rows(
    exp: Experiment, *, samples: int | slice | None, levels: Collection[int] | None = None, control_seed: int | None
) -> pd.DataFrame:
    """``kurtosis_summary`` of one experiment, without its data and seed columns; each network loaded once
    (``levels.level_summary`` joins its non-Gaussianity columns)."""
    generator = torch.Generator().manual_seed(exp.config.seed if control_seed is None else control_seed)
    data = exp.test_inputs(samples)
    inputs = data.inputs(slice(None))
    rows = []
    for level in exp.stored_levels():
        if levels is not None and level.k not in levels:
            continue
        model = exp.model(level)
        weight = model.weights[0][0] * model.masks[0][0]
        x = model.layer_input(inputs, 0)[0]
        per_class = class_kurtosis(x @ weight.T, data.y)  # (classes, units)
        kappa = float(torch.nanmean(torch.nanmean((per_class - 3).abs(), dim=0)))
        shuffled = float(torch.nanmean(non_gaussianity(x @ shuffle_positions(weight, generator).T, data.y)))
        rows.append(
            dict(
                method=level.method,
                level=level.k,
                kept=exp.metrics(level)["kept_fraction"],
                mean_kurtosis=float(torch.nanmean(torch.nanmean(per_class, dim=0))),
                non_gaussianity=kappa,
                non_gaussianity_shuffled=shuffled,
                non_gaussianity_excess=kappa - shuffled,
            )
        )
    return pd.DataFrame(rows)


def gaussian_kurtosis_bound(dataset: Dataset) -> float:
    """2√(24/n): twice the sampling s.d. of a Gaussian sample's Pearson κ, n the smallest class of ``dataset``.

    For n draws of a Gaussian, κ̂ is asymptotically N(3, 24/n). A unit's |κ_c − 3| on
    the Gaussian clone (exactly Gaussian within a class) is sampling noise of this size;
    its mean over units and classes lies near √(2/π)·√(24/n), below this bound.
    """
    counts = torch.bincount(dataset.y, minlength=dataset.num_classes)
    smallest = int(counts.min())
    if smallest < 2:
        raise ValueError(f"gaussian_kurtosis_bound: a class of {dataset.name} has {smallest} samples; κ needs at least 2")
    return 2 * math.sqrt(24 / smallest)


LAGGED_MIN_ROUNDS = 5
"""The fewest IMP rounds the lagged test needs: rounds k = 1 … rounds − 1 have both neighbours, and a rank
correlation given k needs four of them (with three it is ±1 whatever the data)."""


def lagged_localization(kurtosis: pd.DataFrame, widths: pd.DataFrame) -> pd.DataFrame:
    """What each IMP round did to the kurtosis excess and to localization, beside what the next round did.

    ``kurtosis``: ``kurtosis_summary`` rows; ``widths``: ``width_ratios`` rows. With e(k) IMP's
    ``non_gaussianity_excess`` and r(k) its RF width ratio after k rounds, one row per network
    (data, seed) and level k whose levels k − 1 and k + 1 are stored too (k = 1 … rounds − 1):

    - ``excess_change`` = e(k) − e(k − 1), what round k did to the excess, and
      ``localization_next`` = r(k) − r(k + 1), the localization round k + 1 adds (> 0: more
      local): the pair of the lagged test (``lagged_correlations``);
    - ``localization`` = r(k − 1) − r(k) and ``excess_change_next`` = e(k + 1) − e(k): the
      same rounds the other way round, the reverse lag;
    - ``excess`` = e(k), the level the trend-laden reading ranked against ``localization_next``.

    IMP only: oneshot and random pruning are stored at ``compare_levels`` alone (e.g. 4, 7,
    10), each level pruned from the dense network in one step, so they have no rounds and
    no per-round series to lag; the controls of the test are the reverse lag and the
    Gaussian clone's IMP runs (``lagged_correlations``).
    """
    keys = ["data", "seed", "level"]
    imp = kurtosis[kurtosis.method == "imp"][keys + ["non_gaussianity_excess"]].rename(columns={"non_gaussianity_excess": "e"})
    ratio = widths[widths.method == "imp"][keys + ["rf_width_ratio"]].rename(columns={"rf_width_ratio": "r"})
    series = imp.merge(ratio, on=keys)
    rows = series
    for shift, suffix in ((1, "_before"), (-1, "_after")):  # the values at k − 1 and at k + 1, on row k
        rows = rows.merge(series.assign(level=series.level + shift), on=keys, suffixes=("", suffix))
    rows = rows.sort_values(keys)
    return pd.DataFrame(
        {
            **{key: rows[key].to_numpy() for key in keys},
            "excess": rows.e.to_numpy(),
            "excess_change": (rows.e - rows.e_before).to_numpy(),
            "localization_next": (rows.r - rows.r_after).to_numpy(),
            "localization": (rows.r_before - rows.r).to_numpy(),
            "excess_change_next": (rows.e_after - rows.e).to_numpy(),
        }
    )


def partial_spearman(x: pd.Series, y: pd.Series, given: pd.Series) -> float:
    """Spearman's ρ of ``x`` and ``y`` given ``given``: their rank correlation with its rank trend removed.

    Rank each (average ranks for ties), take the residuals of rank(x) and rank(y) after a
    least-squares line on rank(given), and return their Pearson correlation; this equals
    (ρ_xy − ρ_xz ρ_yz) / √((1 − ρ_xz²)(1 − ρ_yz²)), ρ Spearman's and z = ``given``.

    0 when x or y is a monotone function of ``given`` (or constant): its ranks are then all
    ``given`` says, nothing is left to predict beyond it, and the formula's 0/0 is read as no
    association beyond ``given``; a localization that grows round after round without a
    single exception is such a series, and must not stop a claims table. NaN with fewer than
    4 values: with 3 the residuals span one dimension and ρ = ±1 whatever the data.
    """
    x, y, given = (pd.Series(v).reset_index(drop=True) for v in (x, y, given))  # paired by position
    if len(x) < 4:
        return float("nan")
    x_left, y_left = _rank_residuals(x, given), _rank_residuals(y, given)
    if x_left is None or y_left is None:
        return 0.0
    return float(x_left.corr(y_left))


def _rank_residuals(values: pd.Series, given: pd.Series) -> pd.Series | None:
    """rank(values) less its least-squares line on rank(given); None when nothing is left (up to rounding)."""
    r = values.rank() - values.rank().mean()
    z = given.rank() - given.rank().mean()
    slope = (r * z).sum() / (z * z).sum() if (z * z).sum() > 0 else 0.0
    residual = r - slope * z
    return residual if (residual * residual).sum() > 1e-12 * len(r) ** 3 else None


def lagged_correlations(lag: pd.DataFrame) -> pd.DataFrame:
    """The lagged test per network: does the change of IMP's excess in round k lead the localization of round k + 1?

    ``lag``: ``lagged_localization`` rows. One row per network (data, seed), columns
    ``pairs`` (its rounds k = 1 … rounds − 1) and three rank correlations over them:

    - ``lead`` = ρ(excess_change, localization_next | k), the partial Spearman correlation
      given the round (``partial_spearman``): the test;
    - ``reverse`` = ρ(localization, excess_change_next | k): round k's localization against
      round k + 1's change of the excess. Localization itself raises the excess (it is the
      non-Gaussianity due to where the weights sit), so a round that localizes more also
      changes the excess more; with rounds that resemble their neighbours, that alone makes
      both lags positive. ``lead`` speaks for the paper's direction only by exceeding
      ``reverse``, and a trend the partial correlation leaves enters both alike;
    - ``trend_laden`` = ρ(excess, localization_next), Spearman without differences or k, over
      the same rounds: the reading this test replaces (issue 25; it also had k = 0), kept to
      show how much of it a trend makes.

    Why differences *and* k: every network's excess rises and its RF width ratio falls with
    k, so their levels correlate through the round alone. Differences make each side what
    one round did, which removes a linear trend and each network's offset, but not an
    accelerating one: the localization a round adds itself grows with k (Fig. 4A). The rank
    correlation given k then removes the part of the ranks linear in k's, most of any
    monotone trend (a curved one leaves a little, about the same in ``lead`` and ``reverse``).
    0 where one side is monotone in k, without exception (``partial_spearman``); NaN where a
    network has fewer than 4 pairs (``LAGGED_MIN_ROUNDS``).
    """
    rows = []
    for (which, seed), network in lag.groupby(["data", "seed"], sort=True):
        k = network.level
        rows.append(dict(
            data=which,
            seed=seed,
            pairs=len(network),
            lead=partial_spearman(network.excess_change, network.localization_next, k),
            reverse=partial_spearman(network.localization, network.excess_change_next, k),
            trend_laden=network.excess.corr(network.localization_next, method="spearman") if len(network) > 1 else float("nan"),
        ))
    return pd.DataFrame(rows, columns=["data", "seed", "pairs", "lead", "reverse", "trend_laden"])
