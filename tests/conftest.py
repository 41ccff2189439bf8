"""Shared fixtures: one small IMP experiment, trained once per test session.

Every test process runs torch on one thread, and so do the subprocesses it starts (they
inherit OMP_NUM_THREADS and MKL_NUM_THREADS, set here over any pinned value): the tests'
networks are too small to gain from a second thread, and test processes (pytest-xdist
workers, Dask workers, notebook kernels) compete for the same cores.
"""

import os

os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from imprf_utils.experiment import Experiment, ExperimentConfig, run_experiment  # noqa: E402

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


@pytest.fixture(scope="session")
def experiment(tmp_path_factory) -> Experiment:
    return run_experiment(CONFIG, run_store=tmp_path_factory.mktemp("runs"), device="cpu")
