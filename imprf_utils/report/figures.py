"""The papers' summary figures, from the notebooks' tables: Fig. 3C and 4A (localization), accuracy,
the dense learning curves, Pellegrini & Biroli's ablations, Fig. 4B and the lagged test (kurtosis),
Fig. 5 (cavity scores). The matrix of notebooks 07 and 08 is ``imprf_utils.report.matrix``.

Each draws per-seed dots, their mean and the claims' interval (``imprf_utils.report.marks``);
``figure_files.FigureContext.save`` saves it.
"""

from __future__ import annotations

import matplotlib
import matplotlib.lines
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns

from imprf_utils.report.marks import AXIS_LABELS, DATA_COLOURS, band, claims_interval, dots_and_interval

LOCALIZATION_PANELS = ("rf_width", "rf_width_ratio", "component_ratio")
"""The localization measures of Figs. 3C and 4A, one panel each: ``notebooks.levels.summarize`` columns, labelled by `AXIS_LABELS`."""


def data_vs_clone_figure(final: pd.DataFrame, rounds: int) -> plt.Figure:
    """Redman et al. Fig. 3C: IMP's masks after ``rounds`` rounds on the data and on its Gaussian clone.

    ``final``: ``notebooks.levels.summarize`` rows of IMP at its last level. One panel per measure of
    `LOCALIZATION_PANELS`: per-seed dots, the mean and its interval (``claims_interval``,
    `dots_and_interval`), data and clone in `DATA_COLOURS`; dashed: 1, random placement.
    """
    kinds = _data_first(final.data)
    palette = {which: DATA_COLOURS.get(which, f"C{i}") for i, which in enumerate(kinds)}
    fig, axes = plt.subplots(1, len(LOCALIZATION_PANELS), figsize=(9, 3.2))
    for ax, column in zip(axes, LOCALIZATION_PANELS):
        dots_and_interval(ax, final, category="data", value=column, hue="data", order=kinds, palette=palette)
        ax.set_xlabel("")
        ax.set_ylabel(AXIS_LABELS[column])
    for ax in axes[1:]:
        ax.axhline(1, color="k", lw=0.8, ls="--")
    fig.suptitle(f"IMP after {rounds} rounds")
    fig.tight_layout()
    return fig


def localization_figure(summary: pd.DataFrame) -> plt.Figure:
    """Redman et al. Fig. 4A: how local the masks are against the fraction of weights kept, per method.

    ``summary``: ``notebooks.levels.summarize`` rows. Columns of panels: median RF width, the same ÷
    random placement, the largest component ÷ random (`LOCALIZATION_PANELS`; dashed: 1,
    random placement); one row per value of ``data`` (data, clone), each column on one y
    scale. Per-seed dots, their mean and its interval (one-sided 95% Student-t bounds,
    `band`), one colour per method; log x axis, sparser to the right.
    """
    kinds = _data_first(summary.data)
    fig, axes = plt.subplots(len(kinds), len(LOCALIZATION_PANELS), figsize=(12, 3.2 * len(kinds)), sharex=True,
                             sharey="col", squeeze=False)
    for row, which in zip(axes, kinds):
        for ax, column in zip(row, LOCALIZATION_PANELS):
            band(ax, summary[summary.data == which], "kept", column, log_x=True, legend=ax is axes[0, 0])
            ax.set_title(which)
        for ax in row[1:]:
            ax.axhline(1, color="k", lw=0.8, ls="--")
    axes[0, 0].invert_xaxis()  # once: the x axis is shared by all panels
    fig.tight_layout()
    return fig


def accuracy_figure(summary: pd.DataFrame) -> plt.Figure:
    """Test accuracy against the fraction of weights kept, per method (Pellegrini & Biroli's comparison).

    ``summary``: ``notebooks.levels.summarize`` rows; one panel per value of ``data`` (data, clone)
    on one y scale; per-seed dots, their mean and its interval (one-sided 95% Student-t
    bounds, `band`); log x axis, sparser to the right.
    """
    kinds = _data_first(summary.data)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 3.2), sharex=True, sharey=True, squeeze=False)
    for ax, which in zip(axes[0], kinds):
        band(ax, summary[summary.data == which], "kept", "accuracy", log_x=True, legend=ax is axes[0, 0])
        ax.set_title(which)
    axes[0, 0].invert_xaxis()
    fig.tight_layout()
    return fig


def learning_curves_figure(curves: pd.DataFrame, *, rewind_step: int, chance: float) -> plt.Figure:
    """The dense networks' training loss and test accuracy against the SGD step, data and clone (notebook 02).

    ``curves``: ``notebooks.runs.learning_curves`` rows. Per-seed dots, their mean and its interval
    (one-sided 95% Student-t bounds, `band`), one colour per value of ``data``; dotted: the rewind
    step; dashed (accuracy): ``chance``.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, column in zip(axes, ("train_loss", "test_accuracy")):
        band(ax, curves, "step", column, by="data")
        ax.axvline(rewind_step, color="k", lw=0.8, ls=":", label=f"rewind step {rewind_step}")
    axes[1].axhline(chance, color="k", lw=0.8, ls="--")
    axes[1].legend(frameon=False)
    fig.tight_layout()
    return fig


def superclasses_figure(groupings: pd.DataFrame) -> plt.Figure:
    """Pellegrini & Biroli's superclasses: IMP on each labelling of the same images (notebook 06).

    ``groupings``: ``notebooks.levels.summarize`` rows of IMP with a ``labels`` column (the labelling).
    RF-width ratio (dashed: 1, random placement) and test accuracy against the fraction of weights
    kept, one colour per labelling; per-seed dots, their mean and its interval (`band`); log x axis,
    sparser to the right.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, column in zip(axes, ("rf_width_ratio", "accuracy")):
        band(ax, groupings, "kept", column, by="labels", log_x=True)
        ax.invert_xaxis()
    axes[0].axhline(1, color="k", lw=0.8, ls="--")
    fig.tight_layout()
    return fig


def train_fraction_figure(ends: pd.DataFrame) -> plt.Figure:
    """Pellegrini & Biroli's training-set size: the dense network and IMP's last round against the fraction
    of the training set (notebook 06).

    ``ends``: ``notebooks.levels.summarize`` rows with a ``train_fraction`` column and ``method`` "dense"
    or "imp". Left: IMP's RF-width ratio (dashed: 1, random placement); right: test accuracy of both.
    Per-seed dots, their mean and its interval (`band`); log x axis.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    band(axes[0], ends[ends.method == "imp"], "train_fraction", "rf_width_ratio", log_x=True)
    band(axes[1], ends, "train_fraction", "accuracy", log_x=True)
    axes[0].axhline(1, color="k", lw=0.8, ls="--")
    fig.tight_layout()
    return fig


KURTOSIS_PANELS = {
    "mean_kurtosis": "mean κ",
    "non_gaussianity": "|κ − 3|",
    "non_gaussianity_shuffled": "|κ − 3|, weights at random positions",
    "non_gaussianity_excess": "excess: real − random positions",
}


def kurtosis_figure(summary: pd.DataFrame) -> plt.Figure:
    """Redman et al. Fig. 4B with its control: kurtosis vs the fraction of weights kept.

    ``summary``: ``notebooks.kurtosis.kurtosis_summary`` rows. Columns of panels: the paper's mean κ
    (dashed: 3, a Gaussian), |κ − 3|, the same weights at random input positions, and the
    excess of the real over the shuffled (dashed: 0); one row of panels per value of
    ``data`` (data, clone), each column on one y scale, so that the clone's sampling noise
    is seen at the data's scale. Per-seed dots, their mean and its interval (one-sided 95%
    Student-t bounds, `band`); log x axis, sparser to the right.
    """
    kinds = _data_first(summary.data)
    fig, axes = plt.subplots(len(kinds), 4, figsize=(15, 3.2 * len(kinds)), sharex=True, sharey="col", squeeze=False)
    for row, which in zip(axes, kinds):
        table = summary[summary.data == which]
        for ax, (column, label) in zip(row, KURTOSIS_PANELS.items()):
            band(ax, table, "kept", column, log_x=True, legend=ax is axes[0, 0])
            ax.set_title(f"{which}: {label}", fontsize=10)
            ax.set_ylabel(label)
        row[0].axhline(3, color="k", lw=0.8, ls="--")
        row[3].axhline(0, color="k", lw=0.8, ls="--")
    axes[0, 0].invert_xaxis()  # once: the x axis is shared by all panels
    fig.tight_layout()
    return fig


LAG_PANELS = {
    "lead": ("excess_change", "localization_next", "excess change leads (ρ given k)"),
    "reverse": ("localization", "excess_change_next", "reverse lag (ρ given k)"),
}
"""The lagged test's two panels: its ``lagged_correlations`` column → (x, y, title)."""

LAG_AXIS_LABELS = {
    "excess_change": "change of the kurtosis excess in round k",
    "localization_next": "localization round k + 1 adds\n(drop of the RF width ratio)",
    "localization": "localization round k adds\n(drop of the RF width ratio)",
    "excess_change_next": "change of the kurtosis excess in round k + 1",
}


def lag_figure(lag: pd.DataFrame, correlations: pd.DataFrame) -> plt.Figure:
    """The lagged test of Fig. 4: what round k did to IMP's kurtosis excess vs the localization round k + 1 adds.

    ``lag``: ``notebooks.kurtosis.lagged_localization`` rows; ``correlations``: ``notebooks.kurtosis.lagged_correlations``
    rows of the same networks. One row of panels per value of ``data`` (data, clone), each
    panel on its own scale (the clone's changes are noise-sized). Left: the lead (round k's
    change of the excess against the localization round k + 1 adds); right: the reverse lag
    (round k's localization against round k + 1's change of the excess). One colour per seed,
    its points joined in order of k by a faint line, its ρ given k in the legend (n/a with fewer than 4 rounds
    k, ``notebooks.kurtosis.LAGGED_MIN_ROUNDS``); dashed: no change.
    """
    kinds = _data_first(lag.data)
    colours = {seed: f"C{i % 10}" for i, seed in enumerate(sorted(lag.seed.unique()))}
    rho = correlations.set_index(["data", "seed"])
    fig, axes = plt.subplots(len(kinds), 2, figsize=(11, 3.8 * len(kinds)), squeeze=False)
    for row, which in zip(axes, kinds):
        for ax, (column, (x, y, title)) in zip(row, LAG_PANELS.items()):
            for seed, network in lag[lag.data == which].groupby("seed", sort=True):
                value = rho.loc[(which, seed), column]
                label = f"seed {seed}: ρ {value:.2f}" if np.isfinite(value) else f"seed {seed}: ρ n/a"
                (line,) = ax.plot(network[x], network[y], marker="o", ms=4, ls="none", color=colours[seed], label=label)
                ax.plot(network[x], network[y], lw=0.6, alpha=0.35, color=line.get_color())  # in order of k, faint
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
            ax.axhline(0, color="k", lw=0.8, ls="--")
            ax.axvline(0, color="k", lw=0.8, ls="--")
            ax.set_title(f"{which}: {title}", fontsize=10)
            ax.set_xlabel(LAG_AXIS_LABELS[x])
            ax.set_ylabel(LAG_AXIS_LABELS[y])
            ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


def _data_first(values: pd.Series) -> list[str]:
    """The distinct values of a ``data`` column, "data" before "clone" (and any other)."""
    return sorted(set(values), key=lambda which: (which != "data", which))


def _integer_ticks(ax: plt.Axes) -> None:
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def _removal_ticks(ax: plt.Axes, rounds: int, axis: str = "x") -> None:
    """Removal rounds 1 … rounds and "never" (rounds + 1: the survivors) as the ticks of ``axis``."""
    labels = [str(r) for r in range(1, rounds + 1)] + ["never"]
    (ax.set_xticks if axis == "x" else ax.set_yticks)(range(1, rounds + 2), labels)


def cavity_round0_figure(groups: pd.DataFrame, rounds: int) -> plt.Figure:
    """Redman et al. Fig. 5B: mean cavity score at round 0 by the IMP round that removes the weight.

    ``groups``: ``notebooks.cavity.removal_group_means`` rows; one panel per value of
    ``data`` (data, clone), on one y scale; per-seed dots, their mean and its interval
    (one-sided 95% Student-t bounds, `band`); the last point ("never") is the weights that
    survive all ``rounds`` rounds; dashed: 0.
    """
    level0 = groups[groups.level == 0]
    kinds = _data_first(level0.data)
    fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3.4), sharey=True, squeeze=False)
    for ax, which in zip(axes[0], kinds):
        band(ax, level0[level0.data == which], "removal_round", "score", by="data")
        ax.axhline(0, color="k", lw=0.8, ls="--")
        _removal_ticks(ax, rounds)
        ax.set_xlabel("IMP round that removes the weight")
        ax.set_ylabel("mean cavity score at round 0")
        ax.set_title(which)
    fig.tight_layout()
    return fig


def cavity_by_round_figure(
    groups: pd.DataFrame, rounds: int, *, linthresh: float = 0.01, title: str | None = None,
) -> plt.Figure:
    """Redman et al. Fig. 5C: each removal group's mean cavity score on the weights still present, level by level.

    ``groups``: ``notebooks.cavity.removal_group_means`` rows of one dataset. Left: the
    mean over seeds as an image (column k: θ(t_rewind) ⊙ m(k), the network IMP round
    k + 1 starts from; blank: the group is already removed; red > 0, blue < 0). Right:
    the same as one line per removal round (``sns.lineplot``), with bars of the interval
    of the mean over seeds (``claims_interval``: one-sided 95% Student-t bounds). Both on a
    symmetric-log scale, linear within ±``linthresh``, so that the small scores of the
    first levels stay visible. ``title``: the figure's title (e.g. the dataset), over the laid-out panels.
    """
    grid = groups.groupby(["removal_round", "level"]).score.mean().unstack("level")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
    limit = float(np.nanmax(np.abs(grid.to_numpy())))
    norm = matplotlib.colors.SymLogNorm(linthresh=linthresh, vmin=-limit, vmax=limit)
    extent = (grid.columns[0] - 0.5, grid.columns[-1] + 0.5, grid.index[0] - 0.5, grid.index[-1] + 0.5)
    image = axes[0].imshow(grid.to_numpy(), cmap="RdBu_r", norm=norm, aspect="auto", origin="lower", extent=extent)
    _removal_ticks(axes[0], rounds, axis="y")
    for ax in axes:
        _integer_ticks(ax)
    axes[0].set_xlabel(r"mask level k (scores on $\theta(t_{\rm rewind}) \odot m(k)$)")
    axes[0].set_ylabel("IMP round that removes the weight")
    fig.colorbar(image, ax=axes[0], label="mean cavity score")
    palette = dict(zip(grid.index, plt.cm.viridis(np.linspace(0, 1, len(grid)))))
    sns.lineplot(data=groups, x="level", y="score", hue="removal_round", palette=palette, marker="o", markersize=3,
                 errorbar=claims_interval, err_style="bars", err_kws=dict(capsize=2, elinewidth=0.8), legend=False, ax=axes[1])
    handles = [matplotlib.lines.Line2D([], [], color=colour, marker="o", markersize=3, label=str(r) if r <= rounds else "never")
               for r, colour in palette.items()]
    axes[1].axhline(0, color="k", lw=0.8, ls="--")
    axes[1].set_yscale("symlog", linthresh=linthresh)
    axes[1].set_xlabel("mask level k")
    axes[1].set_ylabel("mean cavity score")
    axes[1].legend(handles=handles, title="removed in round", frameon=False, fontsize=7, ncol=2)
    fig.tight_layout()
    if title is not None:
        fig.suptitle(title)
    return fig


def matched_pairs_figure(statistics: pd.DataFrame, *, linthresh: float = 0.001) -> plt.Figure:
    """Fig. 5 with |W| controlled: matched-pair differences by mask level, and why they are needed.

    ``statistics``: ``notebooks.cavity.cavity_statistics`` rows of one dataset. Left: the
    mean score difference of matched pairs (equal |θ(t_rewind)|, earlier- minus
    later-removed) at each mask level in IMP's order, and at level 0 in oneshot's order
    (its null); symmetric-log scale, linear within ±``linthresh``. Right: Spearman
    ρ(removal round, |W|), how strongly magnitude alone predicts removal. Per-seed dots,
    their mean and its interval (one-sided 95% Student-t bounds, `band`).
    """
    imp = statistics.assign(order="imp", difference=statistics.matched_imp)
    oneshot = statistics[statistics.level == 0].assign(order="oneshot", difference=lambda t: t.matched_oneshot)
    pairs = pd.concat([imp, oneshot], ignore_index=True).dropna(subset=["difference"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    band(axes[0], pairs, "level", "difference", by="order")
    for ax in axes:
        _integer_ticks(ax)
    axes[0].axhline(0, color="k", lw=0.8, ls="--")
    axes[0].set_yscale("symlog", linthresh=linthresh)
    axes[0].set_xlabel("mask level k")
    axes[0].set_ylabel("matched pairs: earlier − later score")
    band(axes[1], statistics, "level", "rho_round_weight", by="data")
    axes[1].set_xlabel("mask level k")
    axes[1].set_ylabel("Spearman ρ(removal round, |W|)")
    fig.tight_layout()
    return fig
