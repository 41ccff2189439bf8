"""nbval guards the results: a planted change in a measure makes the notebook's check fail."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imprf_utils.numerics import pinned_environ
from conftest import run_with_a_kernel

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "00_data_and_gaussian_clone.ipynb"

# Loaded by every Python process started with this PYTHONPATH, the notebook's kernel included,
# before the notebook imports imprf_utils: kurtosis comes back 10% too large, from its module and from the
# package that names it for the notebooks.
PLANT = """
import imprf_utils.measures as measures
import imprf_utils.measures.preactivations as preactivations
_kurtosis = preactivations.kurtosis
preactivations.kurtosis = measures.kurtosis = lambda h, dim=0: 1.1 * _kurtosis(h, dim)
"""


def planted_nbval(tmp_path: Path) -> subprocess.CompletedProcess:
    """nbval of the notebook with the plant loaded first, under the pinned numerics of its committed outputs."""
    env = pinned_environ({**os.environ, "IMPRF_FIGURES": str(tmp_path / "figures"), "IMPRF_RUN_STORE": str(tmp_path / "runs")})
    plant_dir = tmp_path / "plant"
    plant_dir.mkdir()
    (plant_dir / "sitecustomize.py").write_text(PLANT)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plant_dir), env.get("PYTHONPATH")]))
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
        "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), str(NOTEBOOK),
    ]
    return run_with_a_kernel(command, cwd=tmp_path, env=env, timeout=600)


def test_planted_kurtosis_change_fails_nbval(tmp_path):
    """Without the plant the same check passes: that is make test's nbval of notebook 00, run after this."""
    planted = planted_nbval(tmp_path)
    assert planted.returncode != 0, planted.stdout[-3000:]
    assert "claims_table(judged)" in planted.stdout  # the claims table is among the cells that differ (nbval shows their input)
    assert not (ROOT / "figures" / "plant").exists()
