"""A figure as files: its caption drawn under it, a PNG at least 1000 px wide, a PDF, and a JSON sidecar.

``save_figure`` writes ``<root>/<dataset>/<name>.png``, ``.pdf`` and ``.json`` (provenance,
caption, notebook, plotted values); ``caption_line`` says what a figure shows in one line,
``quoted`` formats a number for a caption. ``FigureContext`` is what a notebook's figures
share (folder, dataset, preset, seeds, notebook, parameters), so that a notebook saves each
figure in one short call. The HTML index (``imprf_utils.report.index``) and
tests/test_quoted_numbers.py read the sidecars.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class FigureContext:
    """What every figure of one notebook shares: where it goes, the preset and seeds its caption names, the
    notebook it comes from and the parameters stored beside it.

    A notebook builds it once, after its parameters are known (``ctx = FigureContext.of(globals(), "03",
    data_name, params)``), and saves each figure with one call (``ctx.save(fig, name, title=..., text=...)``),
    instead of repeating the folder, preset, seeds and notebook number at every figure.
    """

    root: Path
    """The figures folder: a figure goes to ``<root>/<dataset>/`` (``output.figures_root``)."""
    dataset: str
    """The folder under ``root`` of the notebook's figures (and of its claims record)."""
    preset: str | Path
    """The preset's name (or YAML path), shown in every caption."""
    seeds: Sequence[int]
    """The seeds a figure pools unless its ``save`` says otherwise (their number is in the caption)."""
    notebook: str
    """The notebook's two-digit number, stored in each sidecar: the index lists the figure under it."""
    params: Mapping[str, Any]
    """The parameters stored in each sidecar as "parameters" (with the versions and the commit)."""

    @classmethod
    def of(
        cls, parameters: Mapping[str, Any], notebook: str, dataset: str, params: Mapping[str, Any],
        *, seeds: Sequence[int] | None = None,
    ) -> FigureContext:
        """The context of a notebook whose parameters cell defines ``preset``, ``figures_dir`` and ``seeds``:
        ``FigureContext.of(globals(), "03", data_name, params)``.

        The folder is ``output.figures_root(figures_dir, preset)`` (``figures_dir``, else $IMPRF_FIGURES,
        else build/<preset>/figures). ``seeds``: for a notebook without a ``seeds`` parameter (00 draws
        one dataset), the seeds its figures pool.
        """
        needed = ["preset", "figures_dir"] + (["seeds"] if seeds is None else [])
        missing = [name for name in needed if name not in parameters]
        if missing:
            raise KeyError(
                f"FigureContext.of: the parameters lack {missing}; pass the notebook's globals() after its parameters "
                f"cell, which must define {needed}" + ("" if seeds is not None else " (or pass seeds=)")
            )
        return cls(
            root=figures_root(parameters["figures_dir"], parameters["preset"]),
            dataset=dataset,
            preset=parameters["preset"],
            seeds=list(parameters["seeds"] if seeds is None else seeds),
            notebook=notebook,
            params=dict(params),
        )

    def save(
        self, fig: plt.Figure, name: str, *, title: str, text: str, values: FigureValues | None = None,
        seeds: Sequence[int] | None = None, dataset: str | None = None,
    ) -> Path:
        """`save_figure` of ``fig`` as ``<root>/<dataset>/<name>`` with the caption
        ``caption_line(title, preset, seeds, text)``; return the PNG's path.

        ``title``: the paper figure it replicates, or what it checks; ``text``: what its marks show and
        how to read them; ``values``: the numbers it plots, for the sidecar. ``seeds`` and ``dataset``
        replace the context's for this figure only (e.g. one seed's masks, or a second dataset's check).
        """
        caption = caption_line(title, self.preset, self.seeds if seeds is None else seeds, text)
        return save_figure(fig, dataset or self.dataset, name, self.params, self.root, caption=caption,
                           notebook=self.notebook, values=values)
