"""Run the notebook suite with a preset: ``python -m imprf_utils.reproduce --preset default``.

Each notebook runs with papermill, in order, into the output folder, with the preset's
parameters that the notebook declares; then an ``index.html`` report gives the preset and
its scale, and per notebook its run time, its claims roll-up (``claims_NN.json``) and its
figures with captions, linking every executed notebook (as HTML).
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import nbformat
import papermill
from nbconvert import HTMLExporter

from imprf_utils.claims import BELOW_MARGIN, VERDICTS, estimate_text, find_records, read_claims_record, rollup
from imprf_utils.errors import BAD_INPUT
from imprf_utils.numerics import pin_this_process
from imprf_utils.output import FIGURES, RESULTS, figures_root
from imprf_utils.training.presets import load_preset
from imprf_utils.training.train import PROGRESS_LOG

TIMEOUT_S = 6 * 3600  # per cell: a killed kernel must not hang papermill forever
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
"""The kernel logs errors only: its one routine warning, "Kernel is running over TCP without
encryption" (it listens on 127.0.0.1), would print for every notebook."""


def run_notebook(
    notebook: Path, out_dir: Path, preset: dict, preset_name: str | None = None, *, progress: bool = False
) -> tuple[Path, float]:
    """Execute one notebook with the preset parameters it declares; return its output path and time.

    ``preset_name`` (default: the preset's own ``preset`` entry) is injected as the notebook's
    ``preset`` parameter, so its claims record and default figures folder carry it. A cell
    progress bar shows on a terminal; ``progress`` also prints each training as it finishes.
    """
    declared = {p for p in papermill.inspect_notebook(str(notebook))}
    values = {**preset, "preset": preset_name or preset.get("preset", "default")}
    parameters = {k: v for k, v in values.items() if k in declared}
    output = out_dir / notebook.name
    start = time.perf_counter()
    with trainings_printed() if progress else contextlib.nullcontext():
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(notebook.parent),
            execution_timeout=TIMEOUT_S,
            progress_bar=sys.stderr.isatty(),
            extra_arguments=KERNEL_ARGUMENTS,
        )
    return output, time.perf_counter() - start


@contextlib.contextmanager
def trainings_printed(interval_s: float = 1.0) -> Iterator[None]:
    """Print, indented, each line the kernel reports (``train.report_progress``) while the block runs.

    The kernel inherits $IMPRF_PROGRESS_LOG, pointed at a temporary file that a thread
    follows every ``interval_s``; whatever is left is printed when the block ends.
    """
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "progress.log"
        log.touch()
        done = threading.Event()
        previous = os.environ.get(PROGRESS_LOG)
        os.environ[PROGRESS_LOG] = str(log)

        def follow() -> None:
            with log.open(encoding="utf-8") as lines:
                while True:
                    finished = done.wait(interval_s)
                    for line in lines.readlines():
                        print(f"    {line.rstrip()}", flush=True)
                    if finished:
                        return

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            if previous is None:
                os.environ.pop(PROGRESS_LOG, None)
            else:
                os.environ[PROGRESS_LOG] = previous


def strip_volatile_metadata(path: Path) -> None:
    """Drop papermill's and Jupyter's per-cell timings, so committed notebooks diff cleanly."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def refresh_committed(notebook: Path) -> float:
    """Re-execute a notebook in place with its own (default) parameters, for committing its outputs.

    Its figures and claims record go to the tracked ``figures/`` (the only run that writes there).
    """
    os.environ["IMPRF_FIGURES"] = str(FIGURES)
    start = time.perf_counter()
    with trainings_printed():
        papermill.execute_notebook(
            str(notebook), str(notebook), kernel_name="python3", cwd=str(notebook.parent),
            execution_timeout=TIMEOUT_S, progress_bar=sys.stderr.isatty(), extra_arguments=KERNEL_ARGUMENTS,
        )
    strip_volatile_metadata(notebook)
    return time.perf_counter() - start


def write_golden(notebook: Path, golden_dir: Path) -> float:
    """Execute a notebook with the smoke preset into ``golden_dir``, for tests/test_portability.py.

    Its run store and figures go to a temporary folder (IMPRF_RUN_STORE, IMPRF_FIGURES), so the
    copy names no path of this machine; nbval re-executes it on emulated machines.
    """
    golden_dir.mkdir(parents=True, exist_ok=True)
    smoke = {**load_preset("smoke"), "run_store": None, "figures_dir": None}
    with tempfile.TemporaryDirectory() as scratch:
        saved = {k: os.environ.get(k) for k in ("IMPRF_FIGURES", "IMPRF_RUN_STORE")}
        os.environ.update(IMPRF_FIGURES=f"{scratch}/figures", IMPRF_RUN_STORE=f"{scratch}/runs")
        try:
            output, seconds = run_notebook(notebook, golden_dir, smoke, "smoke")
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    strip_volatile_metadata(output)
    return seconds


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
    banner for the smoke preset), then per notebook its run time, its claims roll-up
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


def main(argv: list[str] | None = None) -> int:
    """The command line; bad input (``errors.BAD_INPUT``, raised here or in a notebook's kernel) is one
    line on stderr and exit status 2, not a traceback."""
    parser = argparse.ArgumentParser(prog="python -m imprf_utils.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", help="a presets/NAME.yaml name, or a YAML file's path")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/PRESET)")
    parser.add_argument(
        "--in-place", action="store_true", help="re-execute the notebooks in place with their defaults (to commit outputs)"
    )
    parser.add_argument(
        "--golden", type=Path, metavar="DIR", help="execute the notebooks with the smoke preset into DIR (tests/golden)"
    )
    parser.add_argument(
        "--results", action="store_true",
        help="execute the notebooks with the preset into results/PRESET/, figures and claims records beside them (to commit)",
    )
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        return reproduce(args)
    except BAD_INPUT as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


def write_results(notebooks: list[Path], preset: dict, name: str) -> int:
    """Execute ``notebooks`` with ``preset`` into ``results/<name>/``, their figures and claims records
    under ``results/<name>/<dataset>/``, without the volatile metadata: a preset's results, to commit."""
    out_dir = RESULTS / name
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, notebook in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {notebook.name} with preset {name} -> {out_dir} ...", flush=True)
        here = {**preset, "figures_dir": os.path.relpath(out_dir, notebook.resolve().parent)}  # papermill's cwd: the notebook's folder
        output, seconds = run_notebook(notebook.resolve(), out_dir, here, name, progress=True)
        strip_volatile_metadata(output)
        print(f"  done in {seconds:.0f} s -> {output}", flush=True)
    return 0


def reproduce(args: argparse.Namespace) -> int:
    """Run the notebooks as ``main``'s arguments say, then write the index (or refresh them in place)."""
    pin_this_process()  # the kernels start with the pinned numerics (imprf_utils.numerics)
    if args.in_place or args.golden:
        for notebook in args.notebooks:
            print(f"{'refreshing' if args.in_place else 'golden copy of'} {notebook.name} ...", flush=True)
            seconds = refresh_committed(notebook.resolve()) if args.in_place else write_golden(notebook.resolve(), args.golden)
            print(f"  done in {seconds:.0f} s", flush=True)
        return 0
    preset = load_preset(args.preset)
    name = Path(args.preset).stem
    if args.results:
        return write_results(args.notebooks, preset, name)
    out_dir = args.out or Path("build") / name
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = []
    for i, notebook in enumerate(args.notebooks, 1):
        print(f"[{i}/{len(args.notebooks)}] {notebook.name} with preset {name} ...", flush=True)
        try:
            executed.append(run_notebook(notebook.resolve(), out_dir, preset, name, progress=True))
        except papermill.PapermillExecutionError as err:
            bad_input = {cls.__name__: cls for cls in BAD_INPUT}
            if err.ename not in bad_input:
                raise
            raise bad_input[err.ename](f"{notebook.name}: {err.evalue} (as run: {out_dir / notebook.name})") from err
        print(f"  done in {executed[-1][1]:.0f} s -> {executed[-1][0]}", flush=True)
    figures = figures_root(preset.get("figures_dir") or None, name, relative_to=args.notebooks[0].resolve().parent)
    index = write_index(out_dir, name, executed, figures, preset)
    print(f"index: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
