"""Run the notebook suite with a preset: ``python -m imprf_utils.reproduce --preset default``.

Each notebook runs with papermill, in order, into the output folder, with the preset's
parameters that the notebook declares; then an ``index.html`` links every executed
notebook (as HTML) and every figure written under ``figures/``.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import time
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter

from imprf_utils.plots import FIGURES
from imprf_utils.presets import load_preset

TIMEOUT_S = 6 * 3600  # per cell: a killed kernel must not hang papermill forever


def run_notebook(notebook: Path, out_dir: Path, preset: dict) -> tuple[Path, float]:
    """Execute one notebook with the preset parameters it declares; return its output path and time."""
    declared = {p for p in papermill.inspect_notebook(str(notebook))}
    parameters = {k: v for k, v in preset.items() if k in declared}
    output = out_dir / notebook.name
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(notebook.parent),
        execution_timeout=TIMEOUT_S,
        progress_bar=False,
    )
    return output, time.perf_counter() - start


def strip_volatile_metadata(path: Path) -> None:
    """Drop papermill's and Jupyter's per-cell timings, so committed notebooks diff cleanly."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def refresh_committed(notebook: Path) -> float:
    """Re-execute a notebook in place with its own (default) parameters, for committing its outputs."""
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook), str(notebook), kernel_name="python3", cwd=str(notebook.parent),
        execution_timeout=TIMEOUT_S, progress_bar=False,
    )
    strip_volatile_metadata(notebook)
    return time.perf_counter() - start


def figures_root(preset: dict, notebooks_dir: Path) -> Path:
    """Where the notebooks write figures with this preset: its figures_dir (relative to the
    notebooks' folder, papermill's working directory), or the repository's figures/."""
    if preset.get("figures_dir"):
        return (notebooks_dir / preset["figures_dir"]).resolve()
    return FIGURES


def write_index(out_dir: Path, preset_name: str, executed: list[tuple[Path, float]], figures_dir: Path = FIGURES) -> Path:
    """HTML pages of the executed notebooks and an index linking them and the figures under ``figures_dir``."""
    exporter = HTMLExporter()
    items = []
    for path, seconds in executed:
        body, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4))
        page = path.with_suffix(".html")
        page.write_text(body)
        items.append(f'<li><a href="{page.name}">{html.escape(path.stem)}</a> ({seconds:.0f} s)</li>')
    figures = sorted(figures_dir.rglob("*.png"))
    links = [html.escape(os.path.relpath(p, out_dir)) for p in figures]
    cards = "".join(
        f'<figure><a href="{link}"><img src="{link}"></a>'
        f"<figcaption>{html.escape(str(p.relative_to(figures_dir)))}</figcaption></figure>"
        for p, link in zip(figures, links)
    )
    index = out_dir / "index.html"
    index.write_text(
        "<!doctype html><meta charset=utf-8><title>imprf: " + html.escape(preset_name) + "</title>"
        "<style>body{font-family:sans-serif;margin:2em}figure{display:inline-block;width:30%;margin:.5em}"
        "img{width:100%;border:1px solid #ccc}</style>"
        f"<h1>imprf — preset {html.escape(preset_name)}</h1><h2>Notebooks</h2><ol>{''.join(items)}</ol>"
        f"<h2>Figures</h2>{cards}"
    )
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", help="a presets/NAME.yaml name, or a YAML file's path")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/PRESET)")
    parser.add_argument(
        "--in-place", action="store_true", help="re-execute the notebooks in place with their defaults (to commit outputs)"
    )
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.in_place:
        for notebook in args.notebooks:
            print(f"refreshing {notebook.name} ...", flush=True)
            print(f"  done in {refresh_committed(notebook.resolve()):.0f} s", flush=True)
        return 0
    preset = load_preset(args.preset)
    out_dir = args.out or Path("build") / Path(args.preset).stem
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = []
    for notebook in args.notebooks:
        print(f"running {notebook.name} with preset {args.preset} ...", flush=True)
        executed.append(run_notebook(notebook.resolve(), out_dir, preset))
        print(f"  done in {executed[-1][1]:.0f} s -> {executed[-1][0]}", flush=True)
    index = write_index(out_dir, str(args.preset), executed, figures_root(preset, args.notebooks[0].resolve().parent))
    print(f"index: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
