"""The HTML report of a run of the suite: ``index.html`` beside the executed notebooks.

``write_index`` gives the preset and its scale, the run times the runner measured
(``run_times.json``), then per notebook its run time, its claims roll-up (``claims_NN.json``,
``tables.rollup``) and its figures with their captions (the JSON sidecars of
``figure_files.save_figure``), linking every executed notebook as HTML.
``imprf_utils.report.reproduce`` writes it after running the notebooks.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
from nbconvert import HTMLExporter

from imprf_utils.output import FIGURES
from imprf_utils.report.claims import BELOW_MARGIN, VERDICTS, estimate_text
from imprf_utils.report.records import find_records, read_claims_record
from imprf_utils.report.run_times import COLUMNS, RUN_TIMES, read_run_times, table_rows
from imprf_utils.report.tables import rollup


VERDICT_COLOURS = {"holds": "#1e8449", "below-margin": "#7d9c2f", "inconclusive": "#7f8c8d", "fails": "#c0392b"}


def verdict_class(verdict: str) -> str:
    """The report's CSS class of a verdict (a reference row, "= 03, row 1", has none)."""
    return {BELOW_MARGIN: "below-margin"}.get(verdict, verdict if verdict in VERDICTS else "")


SCALE_KEYS = ("dataset", "seeds", "hidden", "steps", "rounds", "prune_rate", "device")
STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:80em}"
    ".banner{background:#fff3b0;border:1px solid #e0c000;padding:.6em 1em;font-weight:bold}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}"
    "figure{display:inline-block;vertical-align:top;width:31%;margin:.5em}"
    "img{width:100%;border:1px solid #ccc}figcaption{font-size:.85em}"
    + "".join(f".{v}{{color:{c};font-weight:bold}}" for v, c in VERDICT_COLOURS.items())
)


def notebook_number(name: str) -> str:
    """A notebook's two-digit prefix ("03" for "03_imp_vs_oneshot_vs_random"), or its whole name."""
    return name[:2] if name[:2].isdigit() else name


def paper_figure(name: str) -> str | None:
    """The paper figure a figure's file name declares: "fig4a_rf_width..." -> "Fig. 4A"."""
    match = re.match(r"fig(\d+)([a-z]?)(?:_|$)", name)
    return f"Fig. {match[1]}{match[2].upper()}" if match else None


def figure_caption(name: str, meta: Mapping[str, Any]) -> str:
    """A caption from the JSON ``save_figure`` writes beside a figure: its own "caption" if it has
    one, else the paper figure, the dataset, the seeds and the commit that made it."""
    if meta.get("caption"):
        return str(meta["caption"])
    parameters = meta.get("parameters", {})
    parts = [paper_figure(name) or name]
    if parameters.get("preset"):
        parts.append(f"preset {parameters['preset']}")
    if parameters.get("dataset"):
        parts.append(str(parameters["dataset"]))
    seeds = parameters.get("seeds")
    if isinstance(seeds, list):
        parts.append(f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}")
    if meta.get("git_commit"):
        parts.append(f"commit {str(meta['git_commit'])[:7]}")
    return " · ".join(parts)


def figure_owner(name: str, meta: Mapping[str, Any], sources: Mapping[str, str]) -> str | None:
    """The notebook (by number) that wrote a figure: the JSON's "notebook" field, else the
    notebook whose code names the figure in quotes; None when neither says."""
    declared = meta.get("notebook") or meta.get("parameters", {}).get("notebook")
    if declared:
        number = notebook_number(Path(str(declared)).name)
        return number if number in sources else None
    for number, source in sources.items():
        if f'"{name}"' in source or f"'{name}'" in source:
            return number
    return None


def scale_text(preset: Mapping[str, Any]) -> str:
    """The preset's scale in one line: dataset, seeds, widths, steps, rounds, ..."""
    parts = []
    for key in SCALE_KEYS:
        if key not in preset:
            continue
        value = preset[key]
        if key == "seeds" and isinstance(value, list):
            value = f"{len(value)} ({', '.join(map(str, value))})"
        elif key == "hidden" and isinstance(value, list):
            value = "×".join(map(str, value))
        parts.append(f"{key} {html.escape(str(value))}")
    return " · ".join(parts)


def claims_html(record: dict) -> str:
    """A notebook's claims: counts by kind and verdict, then each row's estimate and verdict."""
    counts = rollup([record])
    columns = [column for column in counts.columns if column != "notebook"]
    head = "".join(f"<th>{v}</th>" for v in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r[v]))}</td>" for v in columns) + "</tr>"
        for r in counts.to_dict("records")
    )
    rows = "".join(
        f"<tr><td>{html.escape(row['kind'])}</td><td>{html.escape(row['claim'])}</td>"
        f"<td>{html.escape(str(row.get('figure', '')))}</td><td>{html.escape(estimate_text(row))}</td>"
        f'<td class="{verdict_class(row["verdict"])}">{html.escape(row["verdict"])}</td></tr>'
        for row in record["rows"]
    )
    changed = "".join(f" {name}={value}" for name, value in record.get("changed", {}).items())
    source = (
        f"dataset {record.get('dataset', '?')}, preset {record['preset']}{' changed:' + changed if changed else ''}, "
        f"commit {str(record['commit'] or 'unknown')[:7]}"
    )
    return (
        f"<p>Claims ({html.escape(source)}):</p><table><tr>{head}</tr>{body}</table>"
        f"<table><tr><th>kind</th><th>claim</th><th>figure</th><th>estimate [interval]</th><th>verdict</th></tr>{rows}</table>"
    )


def run_times_html(figures_dir: Path) -> str:
    """The runner's measured times, ``run_times.json`` under ``figures_dir`` (every notebook it has timed
    there, this run's and earlier ones): per notebook its seconds, preset, commit, machine and threads;
    nothing when the file is absent."""
    path = figures_dir / RUN_TIMES
    if not path.is_file():
        return ""
    head = "".join(f"<th>{column}</th>" for column in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in table_rows(read_run_times(path)))
    return f"<h2>Run times</h2><p>Measured by the runner ({html.escape(str(path))}):</p><table><tr>{head}</tr>{body}</table>"


def figures_html(figures: list[tuple[Path, str]], out_dir: Path) -> str:
    links = [(html.escape(os.path.relpath(p, out_dir)), caption) for p, caption in figures]
    return "".join(
        f'<figure><a href="{link}"><img src="{link}" alt="{html.escape(caption)}"></a>'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for link, caption in links
    )


def write_index(
    out_dir: Path,
    preset_name: str,
    executed: list[tuple[Path, float]],
    figures_dir: Path = FIGURES,
    preset: Mapping[str, Any] | None = None,
) -> Path:
    """HTML pages of the executed notebooks and an ``index.html`` report.

    The report gives the preset and its scale (``preset``'s dataset, seeds, widths...; a
    banner for the smoke preset), the run times under ``figures_dir`` (`run_times_html`),
    then per notebook its run time, its claims roll-up
    from ``claims_NN.json`` under ``figures_dir`` and its figures with captions; figures
    no executed notebook claims go to a last "Figures" section.
    """
    exporter = HTMLExporter()
    sources: dict[str, str] = {}
    pages = []
    for path, seconds in executed:
        notebook = nbformat.read(path, as_version=4)
        body, _ = exporter.from_notebook_node(notebook)
        page = path.with_suffix(".html")
        page.write_text(body)
        number = notebook_number(path.stem)
        sources[number] = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
        pages.append((number, path.stem, page.name, seconds))

    records: dict[str, list[dict]] = {}
    for record_file in find_records(figures_dir) if figures_dir.is_dir() else []:
        records.setdefault(record_file.name[len("claims_"):-len(".json")], []).append(read_claims_record(record_file))

    owned: dict[str | None, list[tuple[Path, str]]] = {}
    for png in sorted(figures_dir.rglob("*.png")) if figures_dir.is_dir() else []:
        meta_file = png.with_suffix(".json")
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        owned.setdefault(figure_owner(png.stem, meta, sources), []).append((png, figure_caption(png.stem, meta)))

    smoke = Path(preset_name).stem == "smoke" or (preset or {}).get("preset") == "smoke"
    parts = [
        f"<!doctype html><meta charset=utf-8><title>imprf: {html.escape(preset_name)}</title><style>{STYLE}</style>",
        f"<h1>imprf — preset {html.escape(preset_name)}</h1>",
    ]
    if smoke:
        parts.append('<p class="banner">smoke preset: checks the plumbing, not the science</p>')
    if preset:
        parts.append(f"<p>Scale: {scale_text(preset)}</p>")
    total = sum(seconds for *_, seconds in pages)
    parts.append(f"<p>{len(pages)} notebook{'s' if len(pages) != 1 else ''}, {total:.0f} s in all.</p>")
    parts.append("<h2>Notebooks</h2><ol>" + "".join(
        f'<li><a href="#nb{html.escape(number)}">{html.escape(stem)}</a> ({seconds:.0f} s)</li>'
        for number, stem, _, seconds in pages
    ) + "</ol>")
    parts.append(run_times_html(figures_dir))
    for number, stem, page, seconds in pages:
        parts.append(f'<h2 id="nb{html.escape(number)}"><a href="{html.escape(page)}">{html.escape(stem)}</a> — {seconds:.0f} s</h2>')
        notebook_records = records.get(number, [])
        if notebook_records:
            parts.extend(claims_html(record) for record in notebook_records)
        else:
            parts.append(f"<p>No claims record (claims_{html.escape(number)}.json) under {html.escape(str(figures_dir))}.</p>")
        parts.append(figures_html(owned.get(number, []), out_dir))
    if owned.get(None):
        parts.append("<h2>Figures</h2>" + figures_html(owned[None], out_dir))
    index = out_dir / "index.html"
    index.write_text("".join(parts))
    return index
