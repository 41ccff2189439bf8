"""The notebooks' structure and their agreement with the presets."""

import ast
from pathlib import Path

import nbformat
import papermill
import yaml
import pytest

from imprf_utils import reproduce
from imprf_utils.errors import ConfigError
from imprf_utils.presets import experiment_config, load_preset, preset_names

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def parameters_cell(path: Path) -> dict:
    cells = [c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells tagged 'parameters' (papermill needs one)"
    values = {}
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, ast.Assign), f"{path.name}: the parameters cell holds assignments only"
        values[node.targets[0].id] = ast.literal_eval(node.value)  # plain literals only
    for line in cells[0].source.splitlines():
        assert "#" in line, f"{path.name}: parameter line without a comment: {line!r}"
    return values


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_with_outputs_and_no_errors(path):
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert any(c.outputs for c in code), f"{path.name} is committed without outputs"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


def test_presets_build_valid_configs():
    assert {"default", "smoke"} <= set(preset_names())
    for name in preset_names():
        experiment_config(load_preset(name))


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid presets: .*default"):
        load_preset("fast")


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


def test_a_missing_preset_file_is_named():
    with pytest.raises(ConfigError, match="does not exist"):
        load_preset("no/such/preset.yaml")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seeds": 3}, "seeds: got 3, expected a non-empty list"),
        ({"seeds": "[0]"}, "give lists with -y"),
        ({"seeds": []}, "non-empty"),
        ({"seeds": [0, 0]}, "distinct"),
        ({"rounds": 3, "compare_levels": [2]}, "include rounds=3"),
    ],
)
def test_notebook_parameters_are_checked_before_any_work(changes, message):
    from imprf_utils.presets import notebook_configs

    parameters = {**load_preset("smoke"), **changes}
    with pytest.raises(ConfigError, match=message):
        notebook_configs(parameters)
