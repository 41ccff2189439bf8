"""The robustness matrix of notebooks 07 and 08: one row per cell (or regime), one panel per question.

Drawn with the per-seed dots, mean and claims' interval of ``imprf_utils.report.marks``;
``figure_files.FigureContext.save`` saves it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any, NamedTuple

import matplotlib
import matplotlib.ticker
import matplotlib.pyplot as plt
import pandas as pd

from imprf_utils.report.marks import METHOD_COLOURS, dots_and_interval, palette_legend


class Panel(NamedTuple):
    """One panel of notebook 07's matrix."""

    title: str
    """What the panel asks, in words ("{rounds}" is filled in)."""
    axis: str
    """The x axis label: the quantity."""
    columns: dict[str, str]
    """``robustness.network_table`` column → its name in the legend."""


ROBUSTNESS_PANELS = (
    Panel("RF-width ratio, IMP − random and IMP − oneshot (< 0: IMP more local)", "difference of RF-width ratios",
          {"imp_minus_random": "IMP − random", "imp_minus_oneshot": "IMP − oneshot"}),
    Panel("largest connected group ÷ random placement (> 1: blob-like)", "ratio",
          {"imp_component": "IMP", "random_component": "random"}),
    Panel("test accuracy: dense, and after {rounds} rounds of IMP or random pruning", "test accuracy",
          {"dense_accuracy": "dense", "imp_accuracy": "IMP", "random_accuracy": "random"}),
    Panel("does IMP replay the initial weights? Spearman ρ of removal round with |W| at the rewind step", "Spearman ρ",
          {"removal_rho": "IMP"}),
    Panel(r"how far dense training moves the first layer: $\|W_T-W_r\|\div\|W_r\|$", "relative change",
          {"weight_change": "dense"}),
)
"""Notebook 07's panels (and 08's): what each asks, its axis, and the network-table columns drawn in it."""
ROBUSTNESS_COLOURS = {
    "IMP − random": METHOD_COLOURS["random"], "IMP − oneshot": METHOD_COLOURS["oneshot"], "IMP": METHOD_COLOURS["imp"],
    "random": METHOD_COLOURS["random"], "dense": METHOD_COLOURS["dense"],
}
"""A difference takes the colour of the method IMP is compared with."""
ROBUSTNESS_COLUMNS = [column for panel in ROBUSTNESS_PANELS for column in panel.columns]
"""Every network-table column the matrix plots, in panel order."""


def cell_name(cell: Mapping[str, Any], long_steps: int | None = None) -> str:
    """A matrix row in words, from its network-table fields.

    Notebook 07's cells (`robustness.Cell`: width, batchnorm, task, long): "width 256,
    BatchNorm, harder task, 4× steps a round" (``long_steps`` the factor; "longer training"
    when not given). Notebook 08's regimes (`batchnorm_regime.Regime`: name, width): "lr 0.4,
    width 256". The labels the claims use (``Cell.label``: "256, BN, harder task") stay as
    they are; this is only what a figure shows.
    """
    if "name" in cell:
        return f"{cell['name']}, width {cell['width']}"
    words = [f"width {cell['width']}", *(["BatchNorm"] if cell["batchnorm"] else []), f"{cell['task']} task"]
    if cell.get("long"):
        words.append(f"{long_steps}× steps a round" if long_steps else "longer training")
    return ", ".join(words)


def robustness_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per cell (its label, in the table's order), the mean over seeds of every column the matrix
    plots (``ROBUSTNESS_COLUMNS``): the figure's numbers, for `save_figure`'s ``values``."""
    return table.groupby("cell", sort=False)[ROBUSTNESS_COLUMNS].mean()


def robustness_figure(table: pd.DataFrame, *, margin: float, rounds: int, long_steps: int | None = None) -> plt.Figure:
    """Notebook 07's matrix (and notebook 08's regimes): one row per cell, one panel per question (``ROBUSTNESS_PANELS``).

    ``table``: ``robustness.network_table`` rows. Rows are named in words (`cell_name`).
    In each panel, per cell and column: dots, the networks (seeds); diamond and bar, their
    mean and its interval (one-sided 95% Student-t bounds, ``claims_interval``), drawn by
    seaborn (`dots_and_interval`). The first panel marks 0 (solid: no difference) and
    −``margin`` (dashed: the claims' smallest effect of interest; a cell whose bar lies left
    of it localizes by more than that); the second marks 1 (dashed: random placement).
    """
    shown = table.assign(row=[cell_name(cell, long_steps) for _, cell in table.iterrows()])
    order = list(dict.fromkeys(shown.row))
    fig, axes = plt.subplots(1, len(ROBUSTNESS_PANELS), figsize=(3.4 * len(ROBUSTNESS_PANELS), 0.5 * len(order) + 2.0),
                             sharey=True)
    for ax, panel in zip(axes, ROBUSTNESS_PANELS):
        long = shown.melt(id_vars="row", value_vars=list(panel.columns), var_name="series", value_name="value")
        palette = {name: ROBUSTNESS_COLOURS[name] for name in panel.columns.values()}
        dots_and_interval(ax, long.assign(series=long.series.map(panel.columns)), category="row", value="value",
                           hue="series", order=order, palette=palette, horizontal=True)
        ax.set_title(textwrap.fill(panel.title.format(rounds=rounds), 34, break_on_hyphens=False, break_long_words=False), fontsize=9)
        ax.set_xlabel(panel.axis)
        ax.set_ylabel("")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        if len(palette) > 1:  # under the axis label, clear of the dots
            palette_legend(ax, palette, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(palette))
    axes[0].axvline(0, color="k", lw=0.8)
    axes[0].axvline(-margin, color="k", lw=0.8, ls="--")
    axes[1].axvline(1, color="k", lw=0.8, ls="--")
    fig.tight_layout()
    return fig
