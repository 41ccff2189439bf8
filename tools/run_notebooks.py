"""Run notebooks without Jupyter: each code cell in order, the preset's parameters injected after
the parameters cell as papermill injects them, each cell's last expression printed.

For machines with the suite's libraries but no Jupyter stack (papermill, nbformat, ipykernel),
such as the GPU machine of benchmarks/gpu_check.sh. ``make reproduce`` (papermill, real kernels,
executed notebooks saved) stays the way to run the suite; this runner saves no notebook.

    python tools/run_notebooks.py notebooks/03_imp_vs_oneshot_vs_random.ipynb
    python tools/run_notebooks.py --preset smoke -p device=cpu -p run_store=/tmp/runs \
        --record times.jsonl notebooks/0[0-2]_*.ipynb

The preset's values (and ``preset``, its name), then ``-p NAME=VALUE`` (VALUE read as YAML), go
to the parameters each notebook declares, as `imprf_utils.report.reproduce.run_notebook` passes them;
a ``-p`` name that presets/default.yaml (which lists every parameter) lacks is refused: a
typo would otherwise be ignored. Each notebook runs in a fresh
namespace with its folder as the working directory (as papermill runs it). ``--record FILE``
appends one JSON line a notebook: its seconds, the device it trained on, the parameters given.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures are saved by the notebooks, never shown

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imprf_utils.training.presets import load_preset  # noqa: E402
from imprf_utils.training.runner import resolve_device  # noqa: E402


def code_cells(notebook: Path) -> list[tuple[str, bool]]:
    """(source, is the parameters cell) of each code cell, in order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [("".join(c["source"]), "parameters" in c.get("metadata", {}).get("tags", []))
            for c in cells if c["cell_type"] == "code"]


def declared_parameters(source: str) -> set[str]:
    """Names the parameters cell assigns (``name: type = value`` or ``name = value``), the ones papermill overrides."""
    names = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return names


def show(value: Any) -> None:
    """A cell's last expression as a notebook would show it: tables whole, artists not at all."""
    if value is None or type(value).__module__.startswith("matplotlib") or (
            isinstance(value, list) and value and type(value[0]).__module__.startswith("matplotlib")):
        return
    print(value.to_string() if isinstance(value, (pd.DataFrame, pd.Series)) else value, flush=True)


def parameters_cell(notebook: Path) -> str:
    """The source of the notebook's one cell tagged ``parameters``."""
    marked = [source for source, is_parameters in code_cells(notebook) if is_parameters]
    if len(marked) != 1:
        raise ValueError(f"{notebook.name}: {len(marked)} cells tagged 'parameters', need exactly one")
    return marked[0]


def run_notebook(notebook: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Execute the code cells of ``notebook``, ``values`` of the parameters it declares injected
    after its parameters cell; return the parameters it ran with. A failing cell raises, naming it."""
    cells = code_cells(notebook)
    declared = declared_parameters(parameters_cell(notebook))
    values = {k: v for k, v in values.items() if k in declared}
    namespace: dict[str, Any] = {"__name__": "__main__", "display": lambda *objects: [show(o) for o in objects]}
    previous = Path.cwd()
    os.chdir(notebook.parent)
    try:
        for number, (source, is_parameters) in enumerate(cells, 1):
            tree = ast.parse(source, filename=f"{notebook.name}, cell {number}")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            try:
                exec(compile(tree, f"{notebook.name}, cell {number}", "exec"), namespace)
                if is_parameters:
                    namespace.update(values)
                if last is not None:
                    show(eval(compile(ast.Expression(last.value), f"{notebook.name}, cell {number}", "eval"), namespace))
            except Exception as error:
                raise RuntimeError(f"{notebook.name}: cell {number} failed: {error!r}") from error
            finally:
                plt.close("all")
    finally:
        os.chdir(previous)
    return {k: namespace[k] for k in sorted(declared)}


def device_name(device: str) -> str:
    """The device a notebook with parameter ``device`` trains on, by name (the GPU's, or the CPU's threads)."""
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        return torch.cuda.get_device_name(resolved)
    return f"{resolved.type} ({torch.get_num_threads()} threads)"


def parse_parameter(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` with VALUE read as YAML (``seeds=[0, 1]``, ``run_store=/tmp/runs``, ``device=cpu``)."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name, yaml.safe_load(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--preset", default="default", help="a preset's name (presets/NAME.yaml) or a YAML file")
    parser.add_argument("-p", dest="parameters", action="append", type=parse_parameter, default=[],
                        metavar="NAME=VALUE", help="one more parameter (VALUE as YAML); repeat for more")
    parser.add_argument("--record", type=Path, help="append one JSON line a notebook to this file")
    args = parser.parse_args(argv)
    preset = load_preset(args.preset)
    preset = {**preset, "preset": preset.get("preset", Path(args.preset).stem)}
    given = dict(args.parameters)
    notebooks = [notebook.resolve() for notebook in args.notebooks]
    unknown = sorted(set(given) - set(load_preset("default")))
    if unknown:
        parser.error(f"unknown parameter {', '.join(unknown)}: presets/default.yaml lists every notebook parameter")
    for notebook in notebooks:
        print(f"## {notebook.name}", flush=True)
        start = time.perf_counter()
        values = run_notebook(notebook, {**preset, **given})
        seconds = time.perf_counter() - start
        print(f"## {notebook.name}: {seconds:.1f} s", flush=True)
        if args.record:
            record = {"name": f"notebook_{notebook.name[:2]}_seconds", "value": round(seconds, 2), "unit": "s",
                      "detail": {"notebook": notebook.name, "preset": values.get("preset", preset["preset"]),
                                 "device": device_name(str(values.get("device", "auto"))), "torch": torch.__version__,
                                 "parameters": {k: str(v) for k, v in given.items()}}}
            with args.record.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
