"""Per-level summaries of an experiment: accuracy, localization and kurtosis, with controls.

Every number a notebook plots or puts in a claims table comes from here, so that the
notebooks narrate and call. Each localization measure is reported against random
placement of the same counts (docs/controls.md), each kurtosis against the same weights at
random input positions (Fig. 4B), each kurtosis claim judged per network (``per_seed``).
Fig. 5's cavity scores live in ``cavity_analysis``. ``notebook_runs`` is the setup of the
notebooks that read notebook 03's runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from imprf_utils.data.clone import gaussian_probe_accuracy
from imprf_utils.data import Dataset, HiddenContrast
from imprf_utils.training.experiment import DENSE, Experiment, load_data
from imprf_utils.training.config import ExperimentConfig
from imprf_utils.training.runner import run_experiments
from imprf_utils.output import figures_root
from imprf_utils.training.presets import notebook_configs
from imprf_utils.measures.preactivations import class_kurtosis, kurtosis, non_gaussianity
from imprf_utils.measures.shape import compactness_ratio, rf_width, rf_width_ratio, shuffle_positions
from imprf_utils.measures.connections import connections_per_unit, locality_maps, near_pair_fraction


# --------------------------------------------------------------------------------------
# The runs of notebooks 03-05: one data and one clone experiment per seed
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotebookRuns:
    """A notebook's experiments, read from (or trained into) the run store, and where its figures go."""

    data: list[Experiment]
    """One experiment per seed on the data, in the order of ``seeds``."""
    clone: list[Experiment]
    """The same seeds on the data's Gaussian clone (oneshot and random at ``clone_compare_levels``)."""
    dataset: str
    """The data's name: figures and the claims record go to ``figures_dir/<dataset>/``."""
    params: dict[str, Any]
    """The seeds and the first data config, stored beside every figure (``plots.save_figure``)."""
    figures_dir: Path
    """``output.figures_root`` of the notebook's ``figures_dir`` and ``preset``."""

    @property
    def experiments(self) -> list[Experiment]:
        return self.data + self.clone


NOTEBOOK_PARAMETERS = ("preset", "seeds", "clone_compare_levels", "run_store", "device", "figures_dir")


def notebook_runs(parameters: Mapping[str, Any]) -> NotebookRuns:
    """The data and clone experiments of a notebook's parameters, run (or read back) once.

    Call as ``runs = notebook_runs(globals())`` after the parameters cell: every field of
    ExperimentConfig comes from the parameters (``presets.notebook_configs``), one
    experiment per entry of ``seeds``, and the same seeds on the Gaussian clone with
    oneshot and random pruning at ``clone_compare_levels``. Stages the run store
    (``run_store``; None: the default store) already holds are read, not trained.
    """
    missing = [name for name in NOTEBOOK_PARAMETERS if name not in parameters]
    if missing:
        raise KeyError(f"notebook_runs: the parameters lack {missing}; the notebook's parameters cell must define {list(NOTEBOOK_PARAMETERS)}")
    configs = notebook_configs(parameters)
    experiments = run_experiments(configs.data + configs.clone, run_store=parameters["run_store"], device=parameters["device"])
    seeds = len(configs.data)
    return NotebookRuns(
        data=experiments[:seeds],
        clone=experiments[seeds:],
        dataset=experiments[0].data[0].name,
        params={"seeds": list(parameters["seeds"]), **configs.data[0].as_dict()},
        figures_dir=figures_root(parameters["figures_dir"], parameters["preset"]),
    )


# --------------------------------------------------------------------------------------
# Per-network effects: the values of a claim (one per seed)
# --------------------------------------------------------------------------------------


def _rows_where(table: pd.DataFrame, where: Mapping[str, Any], caller: str) -> pd.DataFrame:
    """The rows of ``table`` where every ``where`` column equals its value; an error names what is there."""
    unknown = [name for name in (*where, "seed") if name not in table.columns]
    if unknown:
        raise KeyError(f"{caller}: no column {unknown}; the table has {list(table.columns)}")
    selected = table
    for name, value in where.items():
        selected = selected[selected[name] == value]
    if selected.empty:
        present = {name: sorted(table[name].unique().tolist()) for name in where}
        raise ValueError(f"{caller}: no rows with {dict(where)}; the table holds {present}")
    return selected


def per_seed(table: pd.DataFrame, column: str, *, agg: str | None = None, **where: Any) -> pd.Series:
    """One value of ``column`` per network (seed), for a claim's per-network effects.

    The rows where every ``where`` column equals its value (e.g. ``method="imp",
    data="data", level=10``), grouped by ``seed``; each seed must then hold exactly one
    row, unless ``agg`` ("mean", "max", "min", ...) says how to reduce its rows (NaN
    values are skipped). Returns a Series indexed by seed, so that differences of two
    selections pair the networks by seed (a seed missing on one side gives NaN).
    """
    if column not in table.columns:
        raise KeyError(f"per_seed: no column {column!r}; the table has {list(table.columns)}")
    groups = _rows_where(table, where, "per_seed").groupby("seed", sort=True)[column]
    if agg is None:
        counts = groups.size()
        if (counts != 1).any():
            raise ValueError(
                f"per_seed: {column!r} with {where} has {counts.max()} rows for a seed; "
                "narrow the selection (e.g. data=, method=, level=) or pass agg= to reduce them"
            )
        return groups.first().rename(column)
    return groups.agg(agg).rename(column)


def per_seed_spearman(table: pd.DataFrame, x: str, y: str, **where: Any) -> pd.Series:
    """Spearman rank correlation of columns ``x`` and ``y`` within each network (seed).

    ρ = Pearson correlation of the ranks (average ranks for ties), over the rows where
    every ``where`` column equals its value; NaN for a seed whose x or y is constant.
    Returns a Series indexed by seed.
    """
    selected = _rows_where(table, where, "per_seed_spearman")
    return selected.groupby("seed", sort=True)[[x, y]].apply(lambda g: g[x].corr(g[y], method="spearman")).rename(f"rho_{x}_{y}")


# --------------------------------------------------------------------------------------
# Per-level summaries of one experiment
# --------------------------------------------------------------------------------------


def network_columns(exp: Experiment) -> dict[str, Any]:
    """The columns that name a network in every table: ``data`` ("data"/"clone") and ``seed``."""
    return {"data": "clone" if exp.config.clone else "data", "seed": exp.config.seed}


def first_layer(exp: Experiment, level: tuple[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked first-layer weights (units, D) and mask of a level."""
    model = exp.model(level)
    mask = model.masks[0][0]
    return model.weights[0][0].detach() * mask, mask


@torch.no_grad()
def first_layer_inputs(exp: Experiment, level: tuple[str, int], limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """What the first Linear map sees on the test set (after BatchNorm, if any), and labels."""
    data = exp.test_inputs(limit)
    return exp.model(level).layer_input(data.inputs(slice(None)), 0)[0], data.y


def level_summary(exp: Experiment, *, kurtosis_samples: int | None = None, control_seed: int | None = None) -> pd.DataFrame:
    """One row per stored level of each method.

    Columns: method, level (IMP rounds of the sparsity), kept (fraction of hidden
    weights), accuracy (final test accuracy), rf_width (median, pixels), rf_width_ratio
    (median width ÷ random placement; < 1 = local), component_ratio and
    neighbour_ratio (compactness ÷ random placement; > 1 = blob-like), and
    ``kurtosis_summary``'s non_gaussianity, non_gaussianity_shuffled and
    non_gaussianity_excess over the first ``kurtosis_samples`` test images.
    ``control_seed`` draws every random placement and shuffle (None: the network's seed, so
    the controls vary with the seed as the networks do).
    """
    control_seed = exp.config.seed if control_seed is None else control_seed
    train_ds = exp.data[0]
    shape, periodic = train_ds.image_shape, train_ds.periodic
    rows = []
    for level in exp.stored_levels():
        mask = exp.masks(level)[0]
        metrics = exp.metrics(level)
        component, neighbour = compactness_ratio(mask, shape, periodic=periodic, seed=control_seed)
        rows.append(
            dict(
                method=level.method,
                level=level.k,
                kept=metrics["kept_fraction"],
                accuracy=metrics["final_accuracy"],
                rf_width=float(torch.nanmedian(rf_width(mask, shape, periodic=periodic))),
                rf_width_ratio=rf_width_ratio(mask, shape, periodic=periodic, seed=control_seed),
                component_ratio=component,
                neighbour_ratio=neighbour,
            )
        )
    kurtosis = _kurtosis_rows(exp, samples=kurtosis_samples, control_seed=control_seed)
    return pd.DataFrame(rows).join(kurtosis[list(NON_GAUSSIANITY_COLUMNS)])


def probe_accuracies(
    configs: list[ExperimentConfig], contrast: HiddenContrast, *, train_images: int = 8000, test_images: int = 4000
) -> pd.Series:
    """Per seed, the test accuracy of a Gaussian class-covariance probe at ``contrast`` on the data.

    For each config (one per seed) the probe (`clone.gaussian_probe_accuracy`, 64 principal
    components) is fitted on ``train_images`` training images and scored on ``test_images`` test
    images, both drawn at random without replacement by the config's seed from its data
    (``load_data``); the labels are whether an image's class lies in ``contrast.classes``. The
    seeds vary the probe's samples, not the dataset: the interval covers sampling, not data draws.
    """
    accuracies = {}
    for config in configs:
        generator = torch.Generator().manual_seed(config.seed)
        train, test = load_data(config)
        pick = [torch.randperm(len(ds), generator=generator)[:n] for ds, n in ((train, train_images), (test, test_images))]
        labels = [torch.isin(ds.y[i], torch.tensor(contrast.classes)) for ds, i in zip((train, test), pick)]
        accuracies[config.seed] = gaussian_probe_accuracy(train.x[pick[0]], labels[0], test.x[pick[1]], labels[1])
    return pd.Series(accuracies, name="probe_accuracy").rename_axis("seed")


def clone_fidelity(data: Dataset, clone: Dataset) -> pd.DataFrame:
    """Per class: how well the clone matches the data's first two moments, and pixel kurtosis.

    ``mean_error``: |μ_clone − μ_data| / |σ_data| (σ the pixel standard deviations; sampling
    noise is about 1/√n); ``cov_error``: relative Frobenius distance of the class covariances;
    ``cov_noise``: the same distance between the two halves of the data's class, the
    sampling noise a perfect clone cannot beat by much; ``kurtosis_data`` /
    ``kurtosis_clone``: mean over pixels of the Pearson kurtosis (3 for a Gaussian).
    """
    rows = []
    for c in range(data.num_classes):
        xd = data.x[data.y == c].flatten(1).double()
        xc = clone.x[clone.y == c].flatten(1).double()
        half = xd.shape[0] // 2
        cov_d, cov_c = torch.cov(xd.T), torch.cov(xc.T)
        rows.append(
            dict(
                label=c,
                n=xd.shape[0],
                mean_error=float((xc.mean(0) - xd.mean(0)).norm() / xd.std(0).norm()),
                cov_error=float((cov_c - cov_d).norm() / cov_d.norm()),
                cov_noise=float((torch.cov(xd[:half].T) - torch.cov(xd[half:].T)).norm() / cov_d.norm()),
                kurtosis_data=float(kurtosis(xd, dim=0).mean()),
                kurtosis_clone=float(kurtosis(xc, dim=0).mean()),
            )
        )
    return pd.DataFrame(rows)


def per_experiment(table: Callable[..., pd.DataFrame], experiments: list[Experiment], **kwargs) -> pd.DataFrame:
    """``table(exp, **kwargs)`` of several experiments stacked, with columns ``data`` ("data"/"clone") and ``seed``."""
    tables = []
    for exp in experiments:
        rows = table(exp, **kwargs)
        for i, (name, value) in enumerate(network_columns(exp).items()):
            rows.insert(i, name, value)
        tables.append(rows)
    return pd.concat(tables, ignore_index=True)


def summarize(experiments: list[Experiment], **kwargs) -> pd.DataFrame:
    """``level_summary`` of several experiments, with columns ``data`` and ``seed``."""
    return per_experiment(level_summary, experiments, **kwargs)


def learning_curves(experiments: list[Experiment], level: tuple[str, int] = DENSE) -> pd.DataFrame:
    """The stored learning curve of ``level`` of each experiment, one row per evaluation.

    Columns: data ("data"/"clone"), seed, step, train_loss (mean since the previous
    evaluation), test_accuracy.
    """
    tables = []
    for exp in experiments:
        m = exp.metrics(level)
        tables.append(pd.DataFrame({
            **network_columns(exp),
            "step": m["steps"],
            "train_loss": m["train_loss"],
            "test_accuracy": m["test_accuracy"],
        }))
    return pd.concat(tables, ignore_index=True)


def connection_summary(exp: Experiment, *, radius: float = 2.0, control_seed: int | None = None) -> pd.DataFrame:
    """Pellegrini & Biroli's diagnostics of the first-layer masks, one row per stored level.

    Columns: method, level; ``empty`` (share of units with no connection) and
    ``empty_null`` (its binomial expectation (1 − p)^D for the same density p);
    ``dispersion`` (variance of the connections per unit ÷ the binomial variance D p (1 − p):
    > 1 = more empty and more crowded units than chance); ``near_pairs`` (share of pairs of
    a unit's surviving inputs at most ``radius`` px apart, from the locality maps S_sc + S_dc,
    displacements wrapped on a periodic dataset's torus),
    ``near_pairs_shuffled`` (the same masks at random positions, drawn from ``control_seed``;
    None: the network's seed) and ``near_pair_ratio``.
    """
    shape, periodic = exp.data[0].image_shape, exp.data[0].periodic
    generator = torch.Generator().manual_seed(exp.config.seed if control_seed is None else control_seed)
    rows = []
    for level in exp.stored_levels():
        mask = exp.masks(level)[0]
        counts = connections_per_unit(mask).double()
        inputs = mask.shape[1]
        p = float(mask.double().mean())
        near = near_pair_fraction(sum(locality_maps(mask, shape, periodic=periodic)), radius)
        shuffled = near_pair_fraction(
            sum(locality_maps(shuffle_positions(mask, generator), shape, periodic=periodic)), radius
        )
        rows.append(dict(
            method=level.method,
            level=level.k,
            empty=float((counts == 0).double().mean()),
            empty_null=(1 - p) ** inputs,
            dispersion=float(counts.var() / (inputs * p * (1 - p))) if 0 < p < 1 else float("nan"),
            near_pairs=near,
            near_pairs_shuffled=shuffled,
            near_pair_ratio=near / shuffled,
        ))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Fig. 4B: the kurtosis itself, per level
# --------------------------------------------------------------------------------------


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
    return per_experiment(_kurtosis_rows, experiments, samples=samples, levels=levels, control_seed=control_seed)


@torch.no_grad()
def _kurtosis_rows(
    exp: Experiment, *, samples: int | slice | None, levels: Collection[int] | None = None, control_seed: int | None
) -> pd.DataFrame:
    """``kurtosis_summary`` of one experiment, without its data and seed columns; each network loaded once."""
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


def width_ratios(experiments: list[Experiment], *, control_seed: int | None = None) -> pd.DataFrame:
    """RF width ÷ random placement of the first-layer masks at every stored level (Fig. 4A's measure).

    One row per experiment and stored level: data, seed, method, level and
    ``rf_width_ratio`` (``metrics.rf_width_ratio``, its shuffles drawn from
    ``control_seed``, None: each network's seed; < 1 = local), equal to ``level_summary``'s column of the same
    ``control_seed``, without the other measures.
    """
    rows = []
    for exp in experiments:
        train_ds = exp.data[0]
        for level in exp.stored_levels():
            mask = exp.masks(level)[0]
            rows.append(
                dict(
                    **network_columns(exp),
                    method=level.method,
                    level=level.k,
                    rf_width_ratio=rf_width_ratio(
                        mask, train_ds.image_shape, periodic=train_ds.periodic,
                        seed=exp.config.seed if control_seed is None else control_seed,
                    ),
                )
            )
    return pd.DataFrame(rows)


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
