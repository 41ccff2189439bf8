"""Figures named after the papers', saved with the parameters and versions that made them."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib
import matplotlib.lines
import matplotlib.patches
import matplotlib.ticker
import matplotlib.pyplot as plt
import matplotlib.transforms
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from imprf_utils.claims import bounds
from imprf_utils.measures.connections import binomial_null, connections_per_unit
from imprf_utils.measures.shape import ipr
from imprf_utils.output import figures_root, provenance

METHOD_COLOURS = {"imp": "#c0392b", "oneshot": "#2471a3", "random": "#7f8c8d", "dense": "#27ae60"}
METHOD_LABELS = {"imp": "IMP", "oneshot": "oneshot", "random": "random", "dense": "dense"}
"""Legend labels of the values of a ``by`` column (`band`); other values are shown as they are."""
DATA_COLOURS = {"data": "#c0392b", "clone": "#2471a3"}
"""Fig. 3C's colours of the data and of its Gaussian clone."""

INTERVAL_ALPHA = 0.05
INTERVAL = "one-sided 95% Student-t bounds on the mean over seeds (the claims' interval, before Holm)"
"""What the error bars of every statistical figure show (`claims_interval`), as captions say it."""
STATS_KEY = f"Dots: networks (seeds); markers: their mean; bars: {INTERVAL}"
"""The caption sentence of a figure drawn by `band` or `_dots_and_interval`."""


def claims_interval(values: Sequence[float]) -> tuple[float, float]:
    """The interval drawn around every mean over seeds: the claims' one-sided 95% Student-t bounds,
    ``claims.bounds(values, alpha=INTERVAL_ALPHA)``, which the claims' verdicts read (before Holm's
    correction): a figure's bars and its notebook's claims table tell the same story. A seaborn
    ``errorbar`` callable (seaborn calls it for two values or more, NaN left out)."""
    return bounds(values, alpha=INTERVAL_ALPHA)


def quoted(value: float, spec: str = "+.3f") -> str:
    """``value`` formatted by ``spec`` for a caption, with a typographic minus (as the axes' tick labels), or
    "n/a" when it is not finite (e.g. a correlation over too few rounds)."""
    return format(value, spec).replace("-", "−") if np.isfinite(value) else "n/a"


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

MASK_KEY = "pruned weights black, kept weights coloured"
"""The caption sentence of a mask figure (`mask_grid_figure` draws the same key as a legend)."""

CAPTION_FONT_SIZE = 8.0


def caption_line(figure: str, preset: str | Path, seeds: Sequence[int], shows: str) -> str:
    """A figure's caption: "<figure> · preset <name> · <n> seeds · <what the marks show>".

    ``figure``: the paper figure it replicates (e.g. "Fig. 4A", "Pellegrini & Biroli 2022")
    or what it checks; ``preset``: the preset's name or YAML path (its stem is shown);
    ``seeds``: the seeds the figure pools (their number is shown); ``shows``: what lines,
    bands, bars and markers show, e.g. "line: mean, band: min–max over seeds".
    """
    if not seeds:
        raise ValueError("caption_line: seeds is empty; pass the seeds the figure is drawn from (e.g. the notebook's `seeds`)")
    count = len(seeds)
    return f"{figure} · preset {Path(str(preset)).stem} · {count} seed{'s' if count != 1 else ''} · {shows}"


def draw_caption(fig: plt.Figure, caption: str) -> plt.Text:
    """Write ``caption`` under the figure, centred, wrapped to the figure's width.

    The line sits 6 pt below the lowest of the figure's bottom edge and its drawn artists
    (an x label may hang below the edge); ``bbox_inches="tight"`` (as in `save_figure` and
    Jupyter's inline display) grows the image to include it. Wrap width in characters:
    figure width (pt) ÷ (0.55 × font size), the width of an average character of
    matplotlib's sans-serif font.
    """
    width = max(40, int(fig.get_figwidth() * 72 / (0.55 * CAPTION_FONT_SIZE)))
    fig.draw_without_rendering()  # places the panels, so that the extent below is final
    bottom = min(0.0, fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight())
    below = matplotlib.transforms.offset_copy(fig.transFigure, fig=fig, y=-6, units="points")
    lines = textwrap.fill(caption, width, break_on_hyphens=False)  # at spaces only: "RF-width" stays whole
    return fig.text(0.5, bottom, lines, transform=below, ha="center", va="top",
                    fontsize=CAPTION_FONT_SIZE, color="0.25")


FigureValues = Mapping[str, float] | pd.Series | pd.DataFrame
"""What a figure's sidecar may record: names → numbers, or a table of the plotted summary."""


def sidecar_values(values: FigureValues) -> dict[str, float | None] | list[dict[str, Any]]:
    """A figure's plotted numbers as JSON: a mapping as {name: number}; a DataFrame (e.g. the mean over
    seeds per method and level) as one record per row, its named index levels as columns, and a Series
    as the DataFrame of its one column. NaN is null."""
    if isinstance(values, pd.Series):
        values = values.to_frame()
    if isinstance(values, pd.DataFrame):
        frame = values if list(values.index.names) == [None] else values.reset_index()
        return json.loads(frame.to_json(orient="records", double_precision=15))
    return {str(name): float(value) if np.isfinite(value) else None for name, value in values.items()}


MIN_WIDTH_PX = 1000
PAD_INCHES = 0.1  # matplotlib's default pad around a tight bounding box


def png_dpi(fig: plt.Figure) -> int:
    """The dpi that makes the saved PNG at least ``MIN_WIDTH_PX`` wide (and never below 120).

    dpi = ⌈MIN_WIDTH_PX ÷ (w + 2 · pad)⌉ + 1, w the width in inches of the figure's tight
    bounding box (what ``bbox_inches="tight"`` keeps, captions and outside legends
    included), measured after the layout engine has run and at the dpi it is saved at:
    text extents change slightly with dpi, so the estimate is refined until it holds.
    """
    original = fig.dpi
    dpi = 120
    try:
        for _ in range(4):
            fig.set_dpi(dpi)
            fig.draw_without_rendering()  # runs the layout engine, which moves the panels
            width = fig.get_tightbbox(fig.canvas.get_renderer()).width + 2 * PAD_INCHES
            if width * dpi >= MIN_WIDTH_PX + 1:
                break
            dpi = math.ceil(MIN_WIDTH_PX / width) + 1
    finally:
        fig.set_dpi(original)
    return dpi


def save_figure(
    fig: plt.Figure,
    dataset: str,
    name: str,
    params: Mapping[str, Any],
    root: str | Path | None = None,
    *,
    caption: str | None = None,
    notebook: str | None = None,
    values: FigureValues | None = None,
) -> Path:
    """Write ``<root>/<dataset>/<name>.png`` and ``.pdf`` and a ``.json`` of provenance; return the PNG path.

    ``root`` None: :func:`figures_root` of the default preset. ``caption`` (e.g. from
    `caption_line`): drawn under the figure (`draw_caption`) and stored in the JSON as
    "caption"; ``notebook`` (e.g. "03"): stored in the JSON as "notebook". The HTML report
    of ``imprf_utils.reproduce`` reads both. ``values``: the numbers the figure plots
    (`sidecar_values`), stored as "values", so that a notebook's prose can quote them and
    tests/test_quoted_numbers.py can find them. The PNG is at least ``MIN_WIDTH_PX`` wide.
    """
    folder = Path(root if root is not None else figures_root()) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    record = provenance(params)
    if caption is not None:
        draw_caption(fig, caption)
        record["caption"] = caption
    if notebook is not None:
        record["notebook"] = notebook
    if values is not None:
        record["values"] = sidecar_values(values)
    fig.savefig(png, dpi=png_dpi(fig), bbox_inches="tight", pad_inches=PAD_INCHES, metadata={"Software": None})
    fig.savefig(folder / f"{name}.pdf", bbox_inches="tight", pad_inches=PAD_INCHES, metadata={"CreationDate": None, "Producer": None})
    (folder / f"{name}.json").write_text(json.dumps(record, indent=1, default=str))
    return png


def mask_images(mask: torch.Tensor, image_shape: Sequence[int]) -> np.ndarray:
    """Masks (units, C*H*W) as RGB images (units, H, W, 3): pruned black, survivors by channel.

    Three-channel data: a surviving weight lights its pixel in its channel's colour (R, G,
    B), so a pixel with all three channels kept is white (Redman et al. Fig. 1). One
    channel: survivors in a single colour.
    """
    c, h, w = image_shape
    m = mask.reshape(-1, c, h, w).float().permute(0, 2, 3, 1).cpu().numpy()
    if c == 3:
        return m
    colour = np.array([1.0, 0.78, 0.2])  # amber on black
    return m.max(axis=-1, keepdims=True) * colour


def most_connected(mask: torch.Tensor, count: int = 120) -> torch.Tensor:
    """Indices of the ``count`` units with the most surviving weights (Fig. 1's selection)."""
    return mask.sum(1).argsort(descending=True, stable=True)[:count]


MOSAIC_GAP = 0.5
"""Grey level of the one-pixel lines between the tiles of a mask mosaic (pruned is black, so tiles stay apart)."""


def tiles(images: np.ndarray, rows: int, cols: int, fill: float) -> np.ndarray:
    """Images (n, H, W, ...) tiled row-major into one image (rows*(H+1)+1, cols*(W+1)+1, ...),
    framed by one-pixel lines of ``fill``; tiles without an image (n < rows*cols) are ``fill``.

    A grid of units drawn as one image draws in a fraction of a second, where one axes a
    unit (120 of them) took seconds to lay out and save.
    """
    n, h, w = images.shape[:3]
    mosaic = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, *images.shape[3:]), fill, dtype=float)
    for i, image in enumerate(images[: rows * cols]):
        top, left = 1 + (i // cols) * (h + 1), 1 + (i % cols) * (w + 1)
        mosaic[top : top + h, left : left + w] = image
    return mosaic


def mask_mosaic(mask: torch.Tensor, image_shape: Sequence[int], rows: int, cols: int) -> np.ndarray:
    """The ``rows * cols`` most connected units' masks (`most_connected`, `mask_images`) as one
    RGB image, row-major, between grey lines (`tiles`, ``MOSAIC_GAP``)."""
    return tiles(mask_images(mask[most_connected(mask, rows * cols)], image_shape), rows, cols, MOSAIC_GAP)


def mask_key(channels: int) -> list[matplotlib.patches.Patch]:
    """Legend patches for `mask_images`' colours: pruned black; kept amber, or R, G, B by channel (white: all three)."""
    pruned = matplotlib.patches.Patch(facecolor="black", edgecolor="0.5", label="pruned")
    if channels == 3:
        kept = [matplotlib.patches.Patch(facecolor=colour, edgecolor="0.5", label=f"kept in channel {name}")
                for colour, name in (((1, 0, 0), "R"), ((0, 1, 0), "G"), ((0, 0, 1), "B"))]
        kept.append(matplotlib.patches.Patch(facecolor="white", edgecolor="0.5", label="kept in all three"))
        return [pruned, *kept]
    return [pruned, matplotlib.patches.Patch(facecolor=(1.0, 0.78, 0.2), edgecolor="0.5", label="kept")]


def mask_grid_figure(masks: Mapping[str, torch.Tensor], image_shape: Sequence[int], rows: int = 8, cols: int = 15) -> plt.Figure:
    """Side-by-side panels, one per entry of ``masks`` (title -> first-layer mask), with a key (`mask_key`) at the right."""
    fig, axes = plt.subplots(1, len(masks), figsize=(6.2 * len(masks), 3.6), squeeze=False, layout="constrained")
    for ax, (title, mask) in zip(axes[0], masks.items()):
        ax.imshow(mask_mosaic(mask, image_shape, rows, cols), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
    fig.legend(handles=mask_key(image_shape[0]), loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=9)
    return fig


def masks_and_fields_figure(
    masks: Mapping[str, torch.Tensor], fields: Mapping[str, torch.Tensor], image_shape: Sequence[int], rows: int = 8, cols: int = 15
) -> plt.Figure:
    """Fig. 1: per method (the keys of ``masks``), its mask mosaic above its average receptive field.

    Top row: the most connected units' first-layer masks (`mask_mosaic`), with a key (`mask_key`).
    Bottom row: ``fields[method]`` (`metrics.average_receptive_field`), one colour scale for all,
    the centre marked: where masks are local, a bright peak sits on the mark; where they are not,
    the field is low and flat.
    """
    fig, axes = plt.subplots(2, len(masks), figsize=(5.2 * len(masks), 6.4), squeeze=False, layout="constrained",
                             height_ratios=(3.6, 2.8))
    top = max(float(f.max()) for f in fields.values())
    for (title, mask), mosaic_ax, field_ax in zip(masks.items(), axes[0], axes[1]):
        mosaic_ax.imshow(mask_mosaic(mask, image_shape, rows, cols), interpolation="nearest")
        mosaic_ax.set_axis_off()
        mosaic_ax.set_title(title, fontsize=10)
        field = fields[title].cpu().numpy()
        h, w = (field.shape[0] + 1) // 2, (field.shape[1] + 1) // 2
        image = field_ax.imshow(field, cmap="magma", vmin=0, vmax=top, interpolation="nearest",
                                extent=(-w + 0.5, w - 0.5, h - 0.5, -h + 0.5))
        field_ax.plot([0], [0], marker="+", color="0.6", markersize=8)
        field_ax.set_title(f"{title}: average receptive field", fontsize=9)
        field_ax.set_xlabel("offset from the unit's centre (px)", fontsize=8)
    fig.colorbar(image, ax=axes[1].tolist(), shrink=0.9, label="share of units keeping that pixel")
    fig.legend(handles=mask_key(image_shape[0]), loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False, fontsize=9)
    return fig


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


def _dots_and_interval(
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


def _key(ax: plt.Axes, palette: Mapping[str, str], **legend: Any) -> None:
    """A legend of ``palette``'s names, each as the diamond `_dots_and_interval` draws its mean with."""
    handles = [matplotlib.lines.Line2D([], [], color=colour, marker="D", markersize=4, ls="none", label=name)
               for name, colour in palette.items()]
    ax.legend(handles=handles, frameon=False, **legend)


LOCALIZATION_PANELS = ("rf_width", "rf_width_ratio", "component_ratio")
"""The localization measures of Figs. 3C and 4A, one panel each: ``analysis.summarize`` columns, labelled by `AXIS_LABELS`."""


def data_vs_clone_figure(final: pd.DataFrame, rounds: int) -> plt.Figure:
    """Redman et al. Fig. 3C: IMP's masks after ``rounds`` rounds on the data and on its Gaussian clone.

    ``final``: ``analysis.summarize`` rows of IMP at its last level. One panel per measure of
    `LOCALIZATION_PANELS`: per-seed dots, the mean and its interval (``claims_interval``,
    `_dots_and_interval`), data and clone in `DATA_COLOURS`; dashed: 1, random placement.
    """
    kinds = _data_first(final.data)
    palette = {which: DATA_COLOURS.get(which, f"C{i}") for i, which in enumerate(kinds)}
    fig, axes = plt.subplots(1, len(LOCALIZATION_PANELS), figsize=(9, 3.2))
    for ax, column in zip(axes, LOCALIZATION_PANELS):
        _dots_and_interval(ax, final, category="data", value=column, hue="data", order=kinds, palette=palette)
        ax.set_xlabel("")
        ax.set_ylabel(AXIS_LABELS[column])
    for ax in axes[1:]:
        ax.axhline(1, color="k", lw=0.8, ls="--")
    fig.suptitle(f"IMP after {rounds} rounds")
    fig.tight_layout()
    return fig


def localization_figure(summary: pd.DataFrame) -> plt.Figure:
    """Redman et al. Fig. 4A: how local the masks are against the fraction of weights kept, per method.

    ``summary``: ``analysis.summarize`` rows. Columns of panels: median RF width, the same ÷
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

    ``summary``: ``analysis.summarize`` rows; one panel per value of ``data`` (data, clone)
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


def image_grid_figure(images: Mapping[str, torch.Tensor], cols: int = 8) -> plt.Figure:
    """Rows of example images (title -> (n, C, H, W)), each image scaled to its own range."""
    fig, axes = plt.subplots(len(images), cols, figsize=(1.1 * cols, 1.25 * len(images)), squeeze=False)
    for row, (title, batch) in zip(axes, images.items()):
        for ax, image in zip(row, batch[:cols]):
            image = image.float()
            image = (image - image.min()) / (image.max() - image.min() + 1e-12)
            if image.shape[0] == 1:
                ax.imshow(image[0].numpy(), cmap="gray", interpolation="nearest")
            else:
                ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(title, fontsize=9, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def component_grid_figure(panels: Mapping[str, torch.Tensor], image_shape: Sequence[int], cols: int = 8) -> plt.Figure:
    """Side-by-side grids of feature vectors (title -> (k, C*H*W)), Redman et al. Fig. 2's style.

    Each vector is drawn as an image on a diverging scale symmetric about 0 (its own
    max |w|), channels summed for colour data; rows of ``cols`` vectors, in the given order.
    """
    c, h, w = image_shape
    rows = max(-(-len(v) // cols) for v in panels.values())
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.55")  # the lines between tiles
    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 3.1 * rows / cols + 0.4), squeeze=False,
                             layout="constrained")
    for ax, (title, vectors) in zip(axes[0], panels.items()):
        images = vectors.detach().double().reshape(-1, c, h, w).sum(1).cpu().numpy()
        scaled = images / (np.abs(images).max(axis=(1, 2), keepdims=True) + 1e-12)  # each on its own scale, in [-1, 1]
        ax.imshow(np.ma.masked_invalid(tiles(scaled, rows, cols, np.nan)), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
    return fig


def locality_map_figure(maps: Mapping[str, torch.Tensor], radius: int | None = None) -> plt.Figure:
    """Pellegrini & Biroli's locality maps side by side (title -> (2H−1, 2W−1) pair counts).

    Each map is shown as the share of its pairs at each displacement d = (dy, dx) (centre:
    d = 0), on one colour scale for all panels; ``radius``: a circle of that many pixels.
    """
    fig, axes = plt.subplots(1, len(maps), figsize=(2.6 * len(maps) + 0.8, 2.9), squeeze=False, layout="constrained")
    shares = {title: m.double() / m.sum().clamp(min=1) for title, m in maps.items()}
    top = max(float(s.max()) for s in shares.values())
    for ax, (title, share) in zip(axes[0], shares.items()):
        rows, cols = share.shape
        extent = (-(cols // 2) - 0.5, cols // 2 + 0.5, rows // 2 + 0.5, -(rows // 2) - 0.5)
        image = ax.imshow(share.numpy(), cmap="magma", vmin=0, vmax=top, extent=extent, interpolation="nearest")
        if radius:
            ax.add_patch(plt.Circle((0, 0), radius, fill=False, color="w", lw=0.8, ls="--"))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("dx (px)")
    axes[0, 0].set_ylabel("dy (px)")
    fig.colorbar(image, ax=axes[0, -1], label="share of pairs")
    return fig


HISTOGRAM_COLOURS = ("#c0392b", "#2471a3", "#e67e22")


def ipr_figure(
    panels: Mapping[str, Mapping[str, torch.Tensor]],
    inputs: int,
    *,
    density: bool = False,
    colours: Sequence[str] = HISTOGRAM_COLOURS,
    xlabel: str = "IPR · D",
) -> plt.Figure:
    """Histograms of IPR·D values (D = ``inputs``): one panel per entry of ``panels``, titled by its key,
    one histogram per entry of the panel (its label in the legend, its colour from ``colours``).

    40 log-spaced bins from 1 (a vector spread evenly over every input) to D (a single
    input); dashed: 3, a spread-out Gaussian vector's IPR·D. ``density``: each histogram
    integrates to 1 (y label "density"), else counts (y label "units").
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, (title, groups) in zip(axes[0], panels.items()):
        for (label, values), colour in zip(groups.items(), colours):
            ax.hist(values.flatten().numpy(), bins=np.geomspace(1, inputs, 40), color=colour, alpha=0.6, density=density, label=label)
        ax.axvline(3, color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(title)
    axes[0, 0].set_ylabel("density" if density else "units")
    axes[0, 0].legend(frameon=False)
    fig.tight_layout()
    return fig


def connections_figure(masks: Mapping[str, torch.Tensor]) -> plt.Figure:
    """Pellegrini & Biroli's connections per unit: one panel per first-layer mask (units, D).

    Bars: how many units have each number of kept inputs; line: the binomial null of
    the same number of connections placed at random (``metrics.binomial_null``).
    """
    fig, axes = plt.subplots(1, len(masks), figsize=(3.2 * len(masks), 3), sharey=True, squeeze=False)
    for ax, (name, mask) in zip(axes[0], masks.items()):
        counts = connections_per_unit(mask)
        top = int(counts.max()) + 1
        ax.hist(counts.numpy(), bins=np.arange(top + 1) - 0.5, color="#c0392b", alpha=0.7, label="units")
        null = binomial_null(int(mask.sum()), units=mask.shape[0], inputs=mask.shape[1])[: top + 1]
        ax.plot(np.arange(len(null)), null.numpy(), color="k", lw=1, label="binomial null")
        ax.set_title(name)
        ax.set_xlabel("connections per unit")
    axes[0, 0].set_ylabel("units")
    axes[0, 0].legend(frameon=False)
    fig.tight_layout()
    return fig


def by_ipr(w: torch.Tensor) -> torch.Tensor:
    """The rows of w (units, D), most localized first (largest inverse participation ratio)."""
    return w[ipr(w).argsort(descending=True, stable=True)]


KURTOSIS_PANELS = {
    "mean_kurtosis": "mean κ",
    "non_gaussianity": "|κ − 3|",
    "non_gaussianity_shuffled": "|κ − 3|, weights at random positions",
    "non_gaussianity_excess": "excess: real − random positions",
}


def kurtosis_figure(summary: pd.DataFrame) -> plt.Figure:
    """Redman et al. Fig. 4B with its control: kurtosis vs the fraction of weights kept.

    ``summary``: ``analysis.kurtosis_summary`` rows. Columns of panels: the paper's mean κ
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

    ``lag``: ``analysis.lagged_localization`` rows; ``correlations``: ``analysis.lagged_correlations``
    rows of the same networks. One row of panels per value of ``data`` (data, clone), each
    panel on its own scale (the clone's changes are noise-sized). Left: the lead (round k's
    change of the excess against the localization round k + 1 adds); right: the reverse lag
    (round k's localization against round k + 1's change of the excess). One colour per seed,
    its points joined in order of k by a faint line, its ρ given k in the legend (n/a with fewer than 4 rounds
    k, ``analysis.LAGGED_MIN_ROUNDS``); dashed: no change.
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

    ``groups``: ``cavity_analysis.removal_group_means`` rows; one panel per value of
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


def cavity_by_round_figure(groups: pd.DataFrame, rounds: int, *, linthresh: float = 0.01) -> plt.Figure:
    """Redman et al. Fig. 5C: each removal group's mean cavity score on the weights still present, level by level.

    ``groups``: ``cavity_analysis.removal_group_means`` rows of one dataset. Left: the
    mean over seeds as an image (column k: θ(t_rewind) ⊙ m(k), the network IMP round
    k + 1 starts from; blank: the group is already removed; red > 0, blue < 0). Right:
    the same as one line per removal round (``sns.lineplot``), with bars of the interval
    of the mean over seeds (``claims_interval``: one-sided 95% Student-t bounds). Both on a
    symmetric-log scale, linear within ±``linthresh``, so that the small scores of the
    first levels stay visible.
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
    return fig


def matched_pairs_figure(statistics: pd.DataFrame, *, linthresh: float = 0.001) -> plt.Figure:
    """Fig. 5 with |W| controlled: matched-pair differences by mask level, and why they are needed.

    ``statistics``: ``cavity_analysis.cavity_statistics`` rows of one dataset. Left: the
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
    seaborn (`_dots_and_interval`). The first panel marks 0 (solid: no difference) and
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
        _dots_and_interval(ax, long.assign(series=long.series.map(panel.columns)), category="row", value="value",
                           hue="series", order=order, palette=palette, horizontal=True)
        ax.set_title(textwrap.fill(panel.title.format(rounds=rounds), 34, break_on_hyphens=False, break_long_words=False), fontsize=9)
        ax.set_xlabel(panel.axis)
        ax.set_ylabel("")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        if len(palette) > 1:  # under the axis label, clear of the dots
            _key(ax, palette, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(palette))
    axes[0].axvline(0, color="k", lw=0.8)
    axes[0].axvline(-margin, color="k", lw=0.8, ls="--")
    axes[1].axvline(1, color="k", lw=0.8, ls="--")
    fig.tight_layout()
    return fig
