"""Shared fixtures: one small IMP experiment, trained once per test session.

Every test process runs torch on one thread, and so do the subprocesses it starts (they
inherit OMP_NUM_THREADS and MKL_NUM_THREADS, set here over any pinned value): the tests'
networks are too small to gain from a second thread, and test processes (pytest-xdist
workers, Dask workers, notebook kernels) compete for the same cores.

The tests compare bits across processes (Dask workers, notebook kernels, committed outputs),
which holds with the suite's pinned numerics (imprf_utils/numerics.py): a plain ``pytest``
that lacks them stops at once and says to run ``make test``.
"""

import os

ENVIRON = dict(os.environ)  # as the test process started: were the numerics pinned?
os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.stats  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from imprf_utils.numerics import unpinned  # noqa: E402
from imprf_utils.training.config import ExperimentConfig  # noqa: E402
from imprf_utils.training.experiment import Experiment  # noqa: E402
from imprf_utils.training.runner import run_experiment  # noqa: E402

UNPINNED_KERNELS = {name: value for name, value in unpinned(ENVIRON).items() if not name.endswith("_NUM_THREADS")}
"""The pinned kernel choices this process lacks (thread counts are the tests' own, set above)."""


def pytest_configure(config: pytest.Config) -> None:
    """Stop before collecting if the kernels are not pinned, unless pytest runs only notebooks (nbval)
    under an emulated machine: tests/test_portability.py does so on purpose."""
    notebooks_only = all(str(arg).split("::")[0].endswith(".ipynb") for arg in config.args)
    if UNPINNED_KERNELS and not notebooks_only:
        unset = ", ".join(f"{name}={value}" if value else f"{name} unset" for name, value in UNPINNED_KERNELS.items())
        pytest.exit(
            f"the tests need the suite's pinned numerics ({unset} here; imprf_utils/numerics.py): run `make test`, "
            "or `.venv/bin/python -m imprf_utils.numerics -- .venv/bin/python -m pytest FILE`",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )

CONFIG = ExperimentConfig(
    dataset="skewed_texture",
    dataset_options={"n": 1000, "size": 8},
    hidden=(24, 24),
    batch_size=32,
    steps=60,
    rewind_step=10,
    eval_every=30,
    rounds=3,
    compare_levels=(1, 3),
)
"""Seconds to train: 3 IMP rounds, oneshot and random at levels 1 and 3."""

TINY = ExperimentConfig(
    dataset="skewed_texture",
    dataset_options={"n": 400, "size": 8},
    hidden=(16, 16),
    batch_size=32,
    steps=40,
    rewind_step=10,
    eval_every=20,
    rounds=2,
    compare_levels=(2,),
)
"""Fractions of a second a run: error paths, seed comparisons, sweeps."""


def class_non_gaussianity(h: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Oracle: mean over classes of |κ_c − 3| per column, with SciPy's Pearson kurtosis."""
    return np.mean([np.abs(scipy.stats.kurtosis(h[labels == c], axis=0, fisher=False) - 3) for c in np.unique(labels)], axis=0)


@pytest.fixture(scope="session")
def experiment(tmp_path_factory) -> Experiment:
    return run_experiment(CONFIG, run_store=tmp_path_factory.mktemp("runs"), device="cpu")


from pathlib import Path  # noqa: E402

from imprf_utils.output import TMP_PREFIX  # noqa: E402


def changed(config: ExperimentConfig, **changes) -> ExperimentConfig:
    return ExperimentConfig(**{**config.as_dict(), **changes})


def leftovers(store: Path) -> list[str]:
    """Levels and temporaries anywhere under a run store (what a failed start must not leave)."""
    stages = (TMP_PREFIX, "level_", "oneshot_", "random_")
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.name.startswith(stages))


def assert_same_results(a: Experiment, b: Experiment) -> None:
    """Bit for bit: the same levels, masks, saved weights and metrics."""
    assert a.run.levels() == b.run.levels() and a.stored_levels() == b.stored_levels()
    for level in a.stored_levels():
        masks_a, masks_b = a.masks(level), b.masks(level)
        assert len(masks_a) == len(masks_b) and all(map(torch.equal, masks_a, masks_b)), level
        state_a, state_b = a.load(level, "state"), b.load(level, "state")
        assert state_a.keys() == state_b.keys(), level
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), level
        assert a.metrics(level) == b.metrics(level), level


import math  # noqa: E402


def covariance_error(x: torch.Tensor, cov: torch.Tensor) -> tuple[float, float]:
    """(‖Ĉ − cov‖_F, its expected size from sampling noise) for samples x (n, D).

    E‖Ĉ − C‖²_F ≈ Σ_ij Var(x_i x_j) / n = (E[‖x̃‖⁴] − ‖C‖²_F) / n (x̃ centred), estimated
    from the sample itself, so the bound holds for heavy-tailed and near-binary data alike.
    """
    x = x.reshape(len(x), -1).double()
    centred = x - x.mean(0)
    emp = centred.T @ centred / (len(x) - 1)
    noise = math.sqrt(((centred**2).sum(1) ** 2).mean() - (emp**2).sum()) / math.sqrt(len(x))
    return float((emp - cov.double()).norm()), noise


import subprocess  # noqa: E402

KERNEL_LOST_ITS_PORT = ("Address already in use", "Kernel died before replying to kernel_info")
"""What a Jupyter kernel started over TCP prints when another process's kernel bound its port first."""


def run_with_a_kernel(command: list[str], *, attempts: int = 3, **options) -> subprocess.CompletedProcess:
    """``subprocess.run`` (output captured as text) of a command whose Jupyter kernel listens on TCP
    (papermill's command line, nbval), started again when its kernel died at start-up.

    jupyter_client picks free ports before the kernel binds them, so a kernel that another test
    process starts at the same moment can take one first; the suite's own runner avoids that with
    socket files (reproduce.SocketFileKernelManager), which these commands cannot be given. Nothing
    ran in a kernel that died at start-up, so the new start hides no result; a kernel that keeps dying
    is returned as it failed.
    """
    for _ in range(attempts):
        result = subprocess.run(command, capture_output=True, text=True, **options)
        if result.returncode == 0 or not any(s in result.stdout + result.stderr for s in KERNEL_LOST_ITS_PORT):
            return result
    return result
