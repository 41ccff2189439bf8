"""The committed results reproduce on other machines: nbval under emulated CPUs.

A machine's CPU model, vendor, instruction set and thread count choose the kernels of
OpenBLAS, MKL and ATen, and with them the last bits of every result (the sources table in
docs/determinism.md). The project's execution paths pin those choices
(``python -m imprf_utils.numerics -- ...``). Here nbval re-executes two smoke-preset
notebooks committed under tests/golden/ (notebook 01's FastICA and notebook 03's IMP
training) under three emulated machines, through the pinned path, and compares their
checked outputs with the committed ones. ``make notebooks`` regenerates the golden copies.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imprf_utils.numerics import PINNED
from conftest import run_with_a_kernel

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = sorted((ROOT / "tests" / "golden").glob("*.ipynb"))

MACHINES = {
    "openblas-skylakex-aten-default": {"OPENBLAS_CORETYPE": "SkylakeX", "ATEN_CPU_CAPABILITY": "default"},
    "openblas-zen-mkl-compatible-1-thread": {
        "OPENBLAS_CORETYPE": "Zen", "MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    },
    "openblas-sandybridge-4-threads": {"OPENBLAS_CORETYPE": "Sandybridge", "OMP_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "4"},
}


def test_golden_notebooks_are_committed():
    names = {p.name for p in GOLDEN}
    assert {"01_ica_vs_pca.ipynb", "03_imp_vs_oneshot_vs_random.ipynb"} <= names, names


def nbval(machine: dict[str, str], tmp_path: Path, *, pinned: bool, notebooks: list[Path] = GOLDEN) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if k not in PINNED}, **machine, "IMPRF_PROGRESS": "0",
        "IMPRF_FIGURES": str(tmp_path / "figures"), "IMPRF_RUN_STORE": str(tmp_path / "runs"),
    }
    wrapper = [sys.executable, "-m", "imprf_utils.numerics", "--"] if pinned else []
    command = [
        *wrapper, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "--nbval-lax", "--nbval-current-env", "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
        *map(str, notebooks),
    ]
    return run_with_a_kernel(command, cwd=tmp_path, env=env, timeout=900)


@pytest.mark.parametrize("machine", MACHINES, ids=str)
def test_nbval_passes_on_an_emulated_machine(machine, tmp_path):
    result = nbval(MACHINES[machine], tmp_path, pinned=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_without_the_pinned_numerics_an_emulated_machine_fails_nbval(tmp_path):
    """The emulation bites: the same check, run with the machine's own kernels, sees other numbers."""
    machine = {"OPENBLAS_CORETYPE": "Sandybridge", "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
    trained = [p for p in GOLDEN if p.name.startswith("03")]  # IMP training: the most BLAS-bound check
    result = nbval(machine, tmp_path, pinned=False, notebooks=trained)
    assert result.returncode != 0, "nbval passed without pinning: the golden notebooks no longer detect a machine change"
