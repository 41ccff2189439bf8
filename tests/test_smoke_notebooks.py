"""Every notebook runs end to end with the smoke preset: parameter injection, training, figures, claims.

Each notebook goes through papermill (as ``make reproduce`` runs it) with presets/smoke.yaml,
filtered to the parameters it declares, and with its run store and figures folder in a
temporary directory. Notebooks share one run store, so later notebooks reuse earlier runs
as they do in the suite.
"""

from pathlib import Path

import pytest

from imprf_utils.notebooks import batchnorm_regime, robustness
from imprf_utils.report.reproduce import run_notebook
from imprf_utils.training.experiment import Experiment
from imprf_utils.training.presets import load_preset
from imprf_utils.training.sweep import preset_configs

pytestmark = pytest.mark.notebooks

FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def run_store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_the_smoke_preset(path, run_store, tmp_path, monkeypatch):
    monkeypatch.setenv("IMPRF_PROGRESS", "0")  # the kernel inherits it: no progress bars
    figures = tmp_path / "figures"
    preset = {**load_preset("smoke"), "run_store": str(run_store), "figures_dir": str(figures)}
    output, _ = run_notebook(path, tmp_path, preset)  # raises PapermillExecutionError on a failing cell
    assert output.is_file()
    assert list(figures.rglob("*.png")), f"{path.name} wrote no figure under its figures_dir"


def test_the_notebooks_train_exactly_the_runs_of_their_preset(run_store, request):
    """After every notebook ran on one store, it holds the runs of ``preset_configs(smoke, ablations=True)``
    and notebook 07's pilot and matrix and notebook 08's candidates and wide cells
    (``python -m imprf_utils sweep --ablations --robustness --bn-regime``):
    the sweep trains what the notebooks read, and no notebook trains a run of its own."""
    ran = {item.callspec.id for item in request.session.items if item.originalname == "test_notebook_runs_with_the_smoke_preset"}
    if ran != {path.stem for path in NOTEBOOKS} or request.session.testsfailed:
        pytest.skip("needs every notebook's smoke run, all passed, in this session")
    preset = load_preset("smoke")
    pilot, matrix = robustness.pilot_configs(preset), robustness.stored_matrix_configs(preset, run_store)
    regimes = {**batchnorm_regime.candidate_configs(preset), **batchnorm_regime.stored_wide_configs(preset, run_store)}
    configs = [*preset_configs(preset, ablations=True), *robustness.configs_of(pilot), *robustness.configs_of(matrix),
               *robustness.configs_of(regimes)]
    expected = {Experiment(c, run_store).run.path for c in configs}
    assert {p.parent for p in run_store.glob("*/*/config.json")} == expected
