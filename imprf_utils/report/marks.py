"""The marks every statistical figure shares: per-seed dots, their mean, and the claims' interval around it.

Colours and labels (``METHOD_COLOURS``, ``DATA_COLOURS``, ``AXIS_LABELS``), the interval
(``claims_interval``: the claims' one-sided 95% Student-t bounds, ``claims.bounds``), and the
two ways of drawing them with seaborn: ``band`` against a numeric x (Fig. 4's style) and
``dots_and_interval`` on a categorical axis (Fig. 3C, notebook 07's matrix).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.lines
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns

from imprf_utils.report.claims import bounds

METHOD_COLOURS = {"imp": "#c0392b", "oneshot": "#2471a3", "random": "#7f8c8d", "dense": "#27ae60"}
METHOD_LABELS = {"imp": "IMP", "oneshot": "oneshot", "random": "random", "dense": "dense"}
"""Legend labels of the values of a ``by`` column (`band`); other values are shown as they are."""
DATA_COLOURS = {"data": "#c0392b", "clone": "#2471a3"}
"""Fig. 3C's colours of the data and of its Gaussian clone."""

INTERVAL_ALPHA = 0.05
INTERVAL = "one-sided 95% Student-t bounds on the mean over seeds (the claims' interval, before Holm)"
"""What the error bars of every statistical figure show (`claims_interval`), as captions say it."""
STATS_KEY = f"Dots: networks (seeds); markers: their mean; bars: {INTERVAL}"
"""The caption sentence of a figure drawn by `band` or `dots_and_interval`."""


def claims_interval(values: Sequence[float]) -> tuple[float, float]:
    """The interval drawn around every mean over seeds: the claims' one-sided 95% Student-t bounds,
    ``claims.bounds(values, alpha=INTERVAL_ALPHA)``, which the claims' verdicts read (before Holm's
    correction): a figure's bars and its notebook's claims table tell the same story. A seaborn
    ``errorbar`` callable (seaborn calls it for two values or more, NaN left out)."""
    return bounds(values, alpha=INTERVAL_ALPHA)


AXIS_LABELS = {
    "kept": "fraction of hidden weights kept",
    "accuracy": "test accuracy",
    "rf_width": "median RF width (px)",
    "rf_width_ratio": "RF width ÷ random placement",
    "component_ratio": "largest component ÷ random",
    "neighbour_ratio": "pixels with a neighbour ÷ random",
    "non_gaussianity": "mean |κ − 3|",
    "non_gaussianity_shuffled": "mean |κ − 3|, weights at random pixels",
    "non_gaussianity_excess": "|κ − 3| − shuffled control",
    "train_fraction": "fraction of the training set",
    "near_pair_ratio": "near pairs ÷ random placement",
    "dispersion": "connections per unit: variance ÷ binomial",
    "step": "SGD step",
    "train_loss": "training loss",
    "test_accuracy": "test accuracy",
    "level": "mask level k",
    "removal_round": "IMP round that removes the weight",
    "score": "mean cavity score",
    "difference": "matched pairs: earlier − later score",
    "rho_round_weight": "Spearman ρ(removal round, |W|)",
}
"""Axis labels of the summary tables' columns, so that no figure shows a raw column name."""


DODGE = 0.012
"""`band`'s default step between neighbouring groups along x, as a share of the x range (of its decades on a log axis)."""


def _dodged(values: pd.Series, offset: float, span: float, log: bool) -> pd.Series:
    """``values`` moved by ``offset`` × ``span`` along x: multiplied by 10^(offset · span) on a log axis."""
    return values * 10 ** (offset * span) if log else values + offset * span


def band(
    ax: plt.Axes, table: pd.DataFrame, x: str, y: str, *, by: str = "method", log_x: bool = False, dodge: float = DODGE,
    legend: bool = True,
) -> None:
    """Per-seed dots, their mean and its interval against ``x``, one colour per value of ``by`` (Fig. 4's style).

    Drawn by seaborn, for each value of ``by``: ``sns.scatterplot``, one faint dot per row
    (a network); ``sns.lineplot``, the mean over the rows at each x, joined by a line, with
    error bars ``claims_interval`` (one-sided 95% Student-t bounds on the mean, `INTERVAL`).
    A value with one x is a marker and its bar. ``dodge``: the values of ``by`` are set
    apart along x by this share of the x range (of its decades with ``log_x``), centred on
    the true x, so that bars at a shared x (IMP, oneshot and random at one sparsity) do not
    hide each other; the ticks stay at the true x. Colours: `METHOD_COLOURS`, else
    matplotlib's cycle; a legend (with ``legend`` and two values or more) of `METHOD_LABELS`;
    axis labels: `AXIS_LABELS` of ``x`` and ``y``. ``log_x``: log x axis with a tick at
    every x value of ``table`` (e.g. each sparsity trained), labelled with 3 significant digits.
    """
    groups = list(table.groupby(by, sort=False))
    span = float(np.ptp(np.log10(table[x].to_numpy(float)) if log_x else table[x].to_numpy(float)))
    for index, (key, group) in enumerate(groups):
        colour = METHOD_COLOURS.get(key, f"C{index}")
        shown = group.assign(**{x: _dodged(group[x], dodge * (index - (len(groups) - 1) / 2), span, log_x)})
        sns.scatterplot(data=shown, x=x, y=y, color=colour, s=10, alpha=0.35, linewidth=0, legend=False, ax=ax)
        sns.lineplot(data=shown, x=x, y=y, color=colour, marker="o", markersize=4, errorbar=claims_interval,
                     err_style="bars", err_kws=dict(capsize=2, elinewidth=1), label=METHOD_LABELS.get(key, key), ax=ax)
    if log_x:
        ax.set_xscale("log")
        ticks = np.sort(table[x].unique())  # a tick at every value trained (e.g. each sparsity), not only at 10^k
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.tick_params(axis="x", labelrotation=90 if len(ticks) > 6 else 0, labelsize="small")
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(AXIS_LABELS.get(y, y))
    if legend and len(groups) > 1:
        ax.legend(frameon=False)
    elif ax.get_legend() is not None:  # seaborn's, of the lines' labels
        ax.get_legend().remove()


def dots_and_interval(
    ax: plt.Axes, table: pd.DataFrame, *, category: str, value: str, hue: str, order: Sequence[str],
    palette: Mapping[str, str], horizontal: bool = False,
) -> None:
    """Per-row dots and, on them, each group's mean with its interval, for a categorical axis (Fig. 3C, notebook 07).

    ``sns.stripplot``: one dot per row of ``table`` (a network), jittered; ``sns.pointplot``:
    the mean of ``value`` per ``category`` (in ``order``) and ``hue`` (in ``palette``'s
    order, its colours), a diamond, with error bars ``claims_interval`` (`INTERVAL`). Hue
    levels that differ from the category are dodged alike in both (pointplot's dodge is
    set to stripplot's spacing: 0.8 (n − 1)/n for n levels). ``horizontal``: categories
    down the y axis, values along x.
    """
    levels = len(palette)
    dodge = hue != category and levels > 1
    axes = dict(x=value, y=category, orient="h") if horizontal else dict(x=category, y=value, orient="v")
    common = dict(data=table, **axes, hue=hue, order=list(order), hue_order=list(palette), palette=dict(palette), legend=False, ax=ax)
    state = np.random.get_state()
    np.random.seed(0)  # stripplot jitters with numpy's global generator: the same dots on every run
    try:
        sns.stripplot(**common, dodge=dodge, jitter=0.12, size=3, alpha=0.45, linewidth=0)
    finally:
        np.random.set_state(state)
    sns.pointplot(**common, dodge=0.8 * (levels - 1) / levels if dodge else False, errorbar=claims_interval,
                  linestyle="none", markers="D", markersize=4, err_kws=dict(linewidth=1.6))


def palette_legend(ax: plt.Axes, palette: Mapping[str, str], **legend: Any) -> None:
    """A legend of ``palette``'s names, each as the diamond `dots_and_interval` draws its mean with."""
    handles = [matplotlib.lines.Line2D([], [], color=colour, marker="D", markersize=4, ls="none", label=name)
               for name, colour in palette.items()]
    ax.legend(handles=handles, frameon=False, **legend)
