"""A figure as files: its caption drawn under it, a PNG at least 1000 px wide, a PDF, and a JSON sidecar.

``save_figure`` writes ``<root>/<dataset>/<name>.png``, ``.pdf`` and ``.json`` (provenance,
caption, notebook, plotted values); ``caption_line`` says what a figure shows in one line,
``quoted`` formats a number for a caption. The HTML index (``imprf_utils.report.index``)
and tests/test_quoted_numbers.py read the sidecars.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import matplotlib.transforms
import numpy as np
import pandas as pd

from imprf_utils.output import figures_root, provenance


def quoted(value: float, spec: str = "+.3f") -> str:
    """``value`` formatted by ``spec`` for a caption, with a typographic minus (as the axes' tick labels), or
    "n/a" when it is not finite (e.g. a correlation over too few rounds)."""
    return format(value, spec).replace("-", "−") if np.isfinite(value) else "n/a"


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
    of ``imprf_utils.report.index`` reads both. ``values``: the numbers the figure plots
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
