"""The notebooks' structure and their agreement with the presets (the presets themselves: tests/test_presets.py)."""

import ast
import os
import re
import sys
import typing
from pathlib import Path
from typing import Any

import nbformat
import papermill
import yaml
import pytest

from imprf_utils.report import reproduce
from imprf_utils.training.presets import load_preset
from conftest import run_with_a_kernel

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def parameter_lines(path: Path) -> dict[str, tuple[Any, str | None]]:
    """name -> (default value, type hint as written or None) of the notebook's parameters cell:
    ``steps: int = 2000  # comment`` or ``steps = 2000  # comment``, plain literals only."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells tagged 'parameters' (papermill needs one)"
    lines = {}
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, (ast.Assign, ast.AnnAssign)), f"{path.name}: the parameters cell holds assignments only"
        if isinstance(node, ast.Assign):
            lines[node.targets[0].id] = (ast.literal_eval(node.value), None)
        else:
            hint = node.annotation.value if isinstance(node.annotation, ast.Constant) else ast.unparse(node.annotation)
            lines[node.target.id] = (ast.literal_eval(node.value), hint)
    for line in cells[0].source.splitlines():
        assert "#" in line, f"{path.name}: parameter line without a comment: {line!r}"
    return lines


def parameters_cell(path: Path) -> dict:
    return {name: value for name, (value, _) in parameter_lines(path).items()}


def satisfies(value: Any, hint: Any) -> bool:
    """Whether a default value is of its type hint (int for float too, as PEP 484's numeric tower)."""
    if typing.get_origin(hint) is typing.Union:
        return any(satisfies(value, h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return isinstance(value, list) and all(satisfies(v, typing.get_args(hint)[0]) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint) and not (hint is int and isinstance(value, bool))


ANNOTATED = NOTEBOOKS


@pytest.mark.parametrize("path", ANNOTATED, ids=lambda p: p.stem)
def test_parameters_carry_type_hints_that_papermill_shows(path):
    """``steps: int = 2000``: papermill --help-notebook shows each parameter's type (a hint it cannot
    parse, e.g. ``str | None``, would hide the parameter), and every default is of its type."""
    shown = papermill.inspect_notebook(str(path))
    for name, (value, hint) in parameter_lines(path).items():
        assert hint is not None, f"{path.name}: {name} has no type hint"
        assert shown[name]["inferred_type_name"] == hint, f"{path.name}: papermill shows {name} as {shown[name]['inferred_type_name']}"
        assert satisfies(value, eval(hint, {"Optional": typing.Optional})), f"{path.name}: {name} = {value!r} is no {hint}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_are_the_default_preset(path):
    default = load_preset("default")
    for name, value in parameters_cell(path).items():
        assert name in default, f"{path.name}: parameter {name} missing from presets/default.yaml"
        assert value == default[name], f"{path.name}: {name} = {value!r}, presets/default.yaml says {default[name]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_sees_every_parameter(path):
    """papermill skips a parameter line it cannot parse (e.g. a comment holding ' = '), and
    `make reproduce` injects only the parameters papermill declares: a preset would be ignored."""
    assert set(papermill.inspect_notebook(str(path))) == set(parameters_cell(path))


MAX_CELL_LINES = 15


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_narrate_and_call_the_library(path):
    """No code cell over 15 lines but the parameters cell, and no function or class defined in a notebook."""
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        lines = len(cell.source.splitlines())
        assert lines <= MAX_CELL_LINES, f"{path.name} cell {i}: {lines} lines; move the computation or figure into imprf_utils"
        defined = [n.name for n in ast.walk(ast.parse(cell.source)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert not defined, f"{path.name} cell {i} defines {defined}; functions belong in imprf_utils"


DRAWING_MODULES = {"plt", "matplotlib", "mpl", "sns", "seaborn"}
"""Names under which a cell would reach matplotlib (or seaborn, which draws with it)."""


def _root(node: ast.AST) -> str | None:
    """The name an attribute, subscript or call chain starts from: ``fig`` of ``fig.axes[0].set_title``."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _makes_a_figure(call: ast.Call) -> bool:
    """A call of matplotlib (``plt.subplots``) or of a figure function (``mask_grid_figure``)."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    return _root(call.func) in DRAWING_MODULES or name.endswith("_figure")


def drawing_calls(cells: list[str]) -> list[str]:
    """The matplotlib drawing a notebook's code cells do themselves, as "cell i: call": every call of
    ``plt.*`` (or of matplotlib or seaborn) but ``plt.show()``, and every method call on a figure or its
    axes that a cell holds: a name assigned from such a call or from a ``*_figure`` function, or looping
    over one (``fig.suptitle``, ``axes[0].axhline``, ``for ax in fig.axes: ax.set_title``)."""
    trees = [ast.parse(source) for source in cells]
    held: set[str] = set()
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _makes_a_figure(node.value):
            held |= {n.id for target in node.targets for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.For) and any(isinstance(n, ast.Name) and n.id in held for n in ast.walk(node.iter)):
            held |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    found = []
    for i, tree in enumerate(trees):
        calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)),
                       key=lambda n: (n.lineno, n.col_offset))
        for call in calls:
            name, root = ast.unparse(call.func), _root(call.func)
            if (root in DRAWING_MODULES and name != "plt.show") or root in held:
                found.append(f"cell {i}: {name}")
    return found


@pytest.mark.parametrize("source, found", [
    ("fig, ax = plt.subplots(figsize=(5, 3))\nax.hist(values)\nplt.show()", ["cell 0: plt.subplots", "cell 0: ax.hist"]),
    ("fig = cavity_by_round_figure(groups, 3)\nfig.suptitle('data')", ["cell 0: fig.suptitle"]),
    ("fig = ipr_figure(panels, 64)\nfor ax in fig.axes:\n    ax.axhline(1)", ["cell 0: ax.axhline"]),
    ("sns.lineplot(data=table, x='level', y='score')", ["cell 0: sns.lineplot"]),
    ("fig = ipr_figure(panels, 64)\nctx.save(fig, 'ipr', title='I&G', text='histograms')\nplt.show()", []),
])
def test_the_drawing_check_sees_every_way_a_cell_draws(source, found):
    assert drawing_calls([source]) == found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_figure_is_drawn_in_a_notebook(path):
    """A figure is drawn by a figure function of imprf_utils/report (tested, one look for every notebook that
    shows it), not by matplotlib calls in a cell: a notebook's cells call no matplotlib but ``plt.show()``."""
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    found = drawing_calls(cells)
    assert not found, f"{path.name} draws in its cells ({found}); move the drawing into imprf_utils/report/figures.py or pictures.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_are_saved_through_the_notebooks_figure_context(path):
    """One context per notebook (``report.FigureContext``, or ``notebook_runs``'s) holds the folder, preset, seeds and
    notebook number, so that no cell repeats them: no cell calls ``save_figure``, ``caption_line`` or ``figures_root``."""
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert "FigureContext.of(globals()" in code or "notebook_runs(globals()" in code, f"{path.name} builds no figure context"
    repeated = [name for name in ("save_figure(", "caption_line(", "figures_root(", ".savefig(") if name in code]
    assert not repeated, f"{path.name} calls {repeated}; save each figure with ctx.save(fig, name, title=..., text=...)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_types_its_run_time(path):
    """Run times are measured by the runner (``run_times.json`` beside the figures) and tabulated in
    docs/performance.md; a notebook points there instead of typing a time that the next run contradicts."""
    markdown = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
    assert not [text for text in markdown if "Time at the default preset" in text], f"{path.name} types its run time"
    assert "`figures/run_times.json`" in markdown[1] and "docs/performance.md" in markdown[1], (
        f"{path.name}: its second markdown cell should say where its measured run time is"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_with_outputs_and_no_errors(path):
    """Every notebook carries the outputs of its default run, but one committed with its pre-registered criteria
    before that run (metadata imprf.awaiting_first_run, as notebook 07 was): no outputs yet, and no claims record."""
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    if notebook.metadata.get("imprf", {}).get("awaiting_first_run"):
        assert not any(c.outputs for c in code), f"{path.name} has outputs: drop its metadata imprf.awaiting_first_run"
        assert not list(ROOT.glob(f"figures/*/claims_{path.name[:2]}.json")), f"{path.name} has a record: it has run"
        return
    assert any(c.outputs for c in code), f"{path.name} is committed without outputs"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_claims_table_is_checked_by_nbval(path):
    """nbval reads a marker only on a line of its own; the last cell (the claims table) must carry one."""
    last = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"][-1]
    assert "# NBVAL_CHECK_OUTPUT" in [line.strip() for line in last.source.splitlines()]
    assert "claims_table" in last.source


@pytest.mark.notebooks
def test_reproduce_runs_the_notebooks_and_writes_an_index_of_them_and_their_figures(tmp_path, monkeypatch):
    """`make reproduce` with a copied preset file: papermill runs, HTML pages, an index linking both."""
    monkeypatch.setenv("IMPRF_PROGRESS", "0")
    preset = {**load_preset("smoke"), "run_store": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    preset_file = tmp_path / "mine.yaml"
    preset_file.write_text(yaml.safe_dump(preset))
    notebook = NOTEBOOKS[0]
    assert reproduce.main(["--preset", str(preset_file), "--out", str(tmp_path / "out"), str(notebook)]) == 0
    index = (tmp_path / "out" / "index.html").read_text()
    assert (tmp_path / "out" / notebook.name).is_file() and (tmp_path / "out" / f"{notebook.stem}.html").is_file()
    assert f'href="{notebook.stem}.html"' in index
    figures = sorted((tmp_path / "figures").rglob("*.png"))
    assert figures and all(p.name in index for p in figures)


@pytest.mark.notebooks
def test_papermill_with_a_misspelled_parameter_fails_fast_with_the_closest_name(tmp_path):
    """A real papermill run, as a user types it: the smoke preset (which passes names 02 does not use)
    and ``-p step 200``; the kernel stops at the notebook's first library call, nothing trained."""
    notebook = NOTEBOOKS[2]
    assert notebook.name.startswith("02_")
    command = [
        sys.executable, "-m", "papermill", "-k", "python3", "--cwd", str(notebook.parent), "-f", str(ROOT / "presets" / "smoke.yaml"),
        "-p", "step", "200", "-p", "run_store", str(tmp_path / "runs"), "-p", "figures_dir", str(tmp_path / "figures"),
        str(notebook), str(tmp_path / notebook.name),
    ]
    result = run_with_a_kernel(command, timeout=600, env={**os.environ, "IMPRF_PROGRESS": "0"})
    assert result.returncode != 0
    assert "ConfigError: unknown parameter 'step': did you mean 'steps'?" in result.stderr, result.stderr[-3000:]
    assert set(re.findall(r"unknown parameter '(\w+)'", result.stderr)) == {"step"}  # the preset's other names are silent
    assert not (tmp_path / "runs").exists() and not (tmp_path / "figures").exists()
