"""The Makefile's entry points as a newcomer meets them: a bad preset is one line, `make lab` starts as
root, and a plain `pytest` (without make test's pinned numerics) stops at once pointing to `make test`.

``-o .venv/.installed`` keeps make from reinstalling the environment; ``PY`` is this interpreter.
"""

import os
import subprocess
import sys
from pathlib import Path

from imprf_utils.numerics import PINNED, pinned_environ
from imprf_utils.training.presets import preset_names

ROOT = Path(__file__).resolve().parents[1]
MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed", f"PY={sys.executable}"]
# As a user's shell runs it: not as a sub-make of `make test` (whose errors read "make[1]: ...").
TOP_LEVEL = {key: value for key, value in os.environ.items() if key not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}


def test_make_reproduce_with_an_unknown_preset_prints_one_line_and_fails():
    result = subprocess.run(
        [*MAKE, "reproduce", "PRESET=fast"], cwd=ROOT, env=TOP_LEVEL, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    own = [line for line in result.stderr.splitlines() if not line.startswith("make:")]  # make's own "Error 2" may follow
    assert own == [
        f"python -m imprf_utils.report.reproduce: error: unknown preset 'fast'; valid presets: {', '.join(preset_names())} (or a YAML file's path)"
    ]


def lab_command(tmp_path: Path, uid: int) -> str:
    """What `make lab` runs (make -n) for a user whose `id -u` says ``uid``."""
    fake = tmp_path / str(uid)
    fake.mkdir()
    (fake / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (fake / "id").chmod(0o755)
    env = {**TOP_LEVEL, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([*MAKE, "-n", "lab"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_lab_allows_root_only_as_root(tmp_path):
    """JupyterLab refuses to start as root (a container's usual user) without --allow-root."""
    assert "jupyter lab --allow-root notebooks" in lab_command(tmp_path, 0)
    as_user = lab_command(tmp_path, 1000)
    assert "jupyter lab" in as_user and "--allow-root" not in as_user


def pytest_run(*args: str, pinned: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PINNED}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=ROOT, env=pinned_environ(env) if pinned else env, capture_output=True, text=True, timeout=300)


def test_plain_pytest_stops_at_once_and_says_to_use_make_test():
    """Without make test's pinned numerics the tests' bit-for-bit comparisons hold on some machines only
    (an AVX-512 machine picks other kernels in the test process than in the workers it starts)."""
    plain = pytest_run("--collect-only", "tests/test_architecture.py", pinned=False)
    assert plain.returncode == 4 and "run `make test`" in plain.stdout + plain.stderr, plain.stdout + plain.stderr
    assert pytest_run("--collect-only", "tests/test_architecture.py", pinned=True).returncode == 0
    # nbval of notebooks alone runs unpinned: tests/test_portability.py emulates machines that way
    golden = pytest_run("--collect-only", "--nbval-lax", "tests/golden/01_ica_vs_pca.ipynb", pinned=False)
    assert golden.returncode == 0, golden.stdout + golden.stderr
