"""Reliability (issue 5): bad inputs, interrupted runs, determinism, two processes on one store.

Bad inputs tested elsewhere and not repeated here: a missing data_dir, folder or file,
truncated pickles and npz files, wrong keys, wrong shapes and dtypes and out-of-range labels
in the official files, crafted pickles (test_data.py); impossible ExperimentConfig parameters
and unknown dataset names (test_experiment.py, test_data.py); another schema version and an
unwritable store at the level of `Run` (test_store.py); unknown preset names
(test_notebooks.py). What follows adds the data held in memory (NaN/Inf, one class, labels
out of range, dtype), the parameters those tests do not cover, and each bad input met by
`run_experiment`, which must leave no level and no temporary directory behind.

The subprocess tests run IMP for real (about a second a round on one CPU thread); the test
process and the subprocesses all use one thread, as bit-identity is asked of them.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from imprf_utils.analysis import level_summary
from imprf_utils.data import Dataset, gaussian_clone, load_dataset
from imprf_utils.errors import ConfigError, DataFormatError, RunStoreError
from imprf_utils.experiment import Experiment, ExperimentConfig, load_data, run_experiment, run_experiments
from imprf_utils.store import SCHEMA_VERSION, TMP_PREFIX

from conftest import TINY


SLOW = ExperimentConfig(
    dataset="skewed_texture",
    dataset_options={"n": 600, "size": 8},
    hidden=(32, 32),
    batch_size=32,
    steps=1000,
    rewind_step=10,
    eval_every=250,
    rounds=2,
    compare_levels=(2,),
)
"""About 0.8 s a round on one thread: long enough to be killed in the middle of round 2."""

RUN = """
import json, os, sys, time
import torch
torch.set_num_threads(1)
from imprf_utils import store
from imprf_utils.experiment import ExperimentConfig, run_experiment

config_json, run_store, log, go = sys.argv[1:5]
save = store.Run.save

def logged_save(self, level, *args, **kwargs):
    save(self, level, *args, **kwargs)
    with open(log, "a") as f:
        f.write(f"{os.getpid()} saved {level}\\n")

store.Run.save = logged_save
if go != "-":  # start together: say ready, wait for the go
    open(f"{go}.ready-{os.getpid()}", "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)
with open(log, "a") as f:
    f.write(f"{os.getpid()} enter {time.time()}\\n")
run_experiment(ExperimentConfig.from_dict(json.loads(config_json)), run_store=run_store, device="cpu")
with open(log, "a") as f:
    f.write(f"{os.getpid()} exit {time.time()}\\n")
"""
"""A subprocess that runs an experiment and logs each level it saves (argv: config, store, log, go)."""


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Experiment:
    """SLOW run once, in this process, without interruption."""
    return run_experiment(SLOW, run_store=tmp_path_factory.mktemp("reference"), device="cpu")


@pytest.fixture
def start():
    """start(config, store, log, go="-") runs RUN in a subprocess; any still running at the end are killed."""
    processes = []

    def start(config: ExperimentConfig, store: Path, log: Path, go: str = "-") -> subprocess.Popen:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "IMPRF_PROGRESS": "0"}
        command = [sys.executable, "-c", RUN, json.dumps(config.as_dict()), str(store), str(log), go]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        return processes[-1]

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate()


def leftovers(store: Path) -> list[str]:
    """Levels and temporaries anywhere under a run store (what a failed start must not leave)."""
    stages = (TMP_PREFIX, "level_", "oneshot_", "random_")
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.name.startswith(stages))


def assert_same_results(a: Experiment, b: Experiment) -> None:
    """Bit for bit: the same levels, masks, saved weights and metrics."""
    assert a.run.levels() == b.run.levels()
    for level in a.run.levels():
        masks_a, masks_b = a.masks(level), b.masks(level)
        assert len(masks_a) == len(masks_b) and all(map(torch.equal, masks_a, masks_b)), level
        state_a, state_b = a.run.load(level, "state"), b.run.load(level, "state")
        assert state_a.keys() == state_b.keys(), level
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), level
        assert a.metrics(level) == b.metrics(level), level


def changed(config: ExperimentConfig, **changes) -> ExperimentConfig:
    return ExperimentConfig(**{**config.as_dict(), **changes})


# --------------------------------------------------------------------------- bad inputs


def images(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 1, 4, 4, generator=torch.Generator().manual_seed(0)), torch.arange(n) % 2


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_or_inf_in_the_images_is_refused(value):
    x, y = images()
    x[3, 0, 1, 2] = value
    with pytest.raises(DataFormatError, match=r"1 of 8 images hold NaN or Inf — drop or repair them"):
        Dataset(x, y, 2, "mine")


def test_generated_data_that_overflow_are_refused_before_a_run_starts(tmp_path):
    # exp(sigma z) overflows float32 at sigma = 20: the texture would be NaN, silently
    with pytest.raises(DataFormatError, match="NaN or Inf.*lower the option that overflowed.*sigma"):
        load_dataset("skewed_texture", n=40, size=8, sigma=20.0)
    config = changed(TINY, dataset_options={"n": 40, "size": 8, "sigma": 20.0})
    with pytest.raises(DataFormatError, match="NaN or Inf"):
        run_experiment(config, run_store=tmp_path, device="cpu")
    assert leftovers(tmp_path) == []


def test_non_finite_or_misshapen_mean_is_refused():
    x = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    y = torch.tensor([0, 1, 0, 1])
    with pytest.raises(DataFormatError, match="mean must be 4 finite numbers.*recompute it"):
        Dataset(x, y, 2, "mine", mean=torch.tensor([0.0, float("nan"), 0.0, 0.0]))
    with pytest.raises(DataFormatError, match=r"mean must be 4 finite numbers.*\(3,\)"):
        Dataset(x, y, 2, "mine", mean=torch.zeros(3))


def test_fewer_than_two_classes_is_refused():
    x, _ = images()
    with pytest.raises(DataFormatError, match="num_classes is 1; classification needs two or more"):
        Dataset(x, torch.zeros(8, dtype=torch.int64), 1, "mine")
    # generated data: caught when the config is made, before any run directory exists
    with pytest.raises(ConfigError, match="nlgp needs two or more classes: give xi and/or gain as tuples"):
        changed(TINY, dataset="nlgp", dataset_options={"xi": 2.0, "gain": 10.0})
    with pytest.raises(ConfigError, match="photos must name two or more of"):
        changed(TINY, dataset="natural", dataset_options={"photos": ("china",)})


@pytest.mark.parametrize("labels, span", [([0, 1, 2, 3, 0, 1, 2, 4], "0..4"), ([-1, 0, 1, 2, 3, 0, 1, 2], "-1..3")])
def test_labels_out_of_range_in_memory_are_refused(labels, span):
    x, _ = images()
    with pytest.raises(DataFormatError, match=f"labels span {span}, expected 0..3 — labels must be 0-based"):
        Dataset(x, torch.tensor(labels), 4, "mine")


def test_images_of_the_wrong_dtype_or_shape_in_memory_are_refused():
    x, y = images()
    with pytest.raises(DataFormatError, match=r"x is torch.float64.*convert with x.float\(\)"):
        Dataset(x.double(), y, 2, "mine")
    with pytest.raises(DataFormatError, match=r"x must be \(N, C, H, W\).*got x \(8, 16\)"):
        Dataset(x.reshape(8, 16), y, 2, "mine")
    with pytest.raises(DataFormatError, match=r"y \(N,\) int64.*convert labels with y.long\(\)"):
        Dataset(x, y.float(), 2, "mine")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"dataset_options": {"n": 40, "sigmaa": 1.0}}, "unknown option.*sigmaa.*valid options: n, sigma"),
        ({"seed": -1}, "seeds must be integers >= 0"),
        ({"data_seed": -1}, "seeds must be integers >= 0"),
        ({"test_limit": 0}, "test_limit 0: must be None"),
        ({"steps": 0}, "steps 0: must be > 0"),
        ({"lr": 0.0}, "lr 0.0: must be > 0"),
        ({"eval_every": 0}, "eval_every 0: must be > 0"),
        ({"hidden": (16, 0)}, "widths > 0"),
    ],
)
def test_parameters_are_refused_when_the_config_is_made(change, message):
    """Before any run directory or data exist (test_experiment.py has the others)."""
    with pytest.raises(ConfigError, match=message):
        changed(TINY, **change)


def test_missing_data_dir_in_a_run_leaves_no_level(tmp_path):
    config = changed(TINY, dataset="cifar10", dataset_options={}, data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="no folder .*nowhere.*cifar-10-python.tar.gz"):
        run_experiment(config, run_store=tmp_path / "runs", device="cpu")
    assert leftovers(tmp_path / "runs") == []


def test_older_schema_in_a_run_is_refused_and_left_untouched(tmp_path):
    path = Experiment(TINY, tmp_path).run.path
    config = json.loads((path / "config.json").read_text())
    config["schema_version"] = SCHEMA_VERSION - 1
    (path / "config.json").write_text(json.dumps(config))
    before = sorted(p.name for p in path.iterdir())
    with pytest.raises(RunStoreError, match=f"schema version {SCHEMA_VERSION - 1}.*delete that directory"):
        run_experiment(TINY, run_store=tmp_path, device="cpu")
    assert sorted(p.name for p in path.iterdir()) == before and leftovers(tmp_path) == []


def test_run_store_below_a_file_is_refused_and_nothing_written(tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("a file where the run store should be")
    with pytest.raises(RunStoreError, match="not writable.*pass a writable run_store"):
        run_experiment(TINY, run_store=blocker, device="cpu")
    assert blocker.read_text() == "a file where the run store should be"
    assert list(tmp_path.iterdir()) == [blocker]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_run_store_is_refused_and_nothing_written(tmp_path):
    store = tmp_path / "runs"
    store.mkdir()
    store.chmod(0o555)
    try:
        with pytest.raises(RunStoreError, match="not writable.*pass a writable run_store"):
            run_experiment(TINY, run_store=store, device="cpu")
        assert list(store.iterdir()) == []
    finally:
        store.chmod(0o755)


# --------------------------------------------------------------------------- interruption


def test_run_killed_mid_round_resumes_bit_identical(reference, start, tmp_path):
    store, log = tmp_path / "runs", tmp_path / "log"
    process = start(SLOW, store, log)
    deadline = time.monotonic() + 60
    while not any(store.glob("*/*/level_1")):
        assert process.poll() is None, f"ended before level_1: {process.stdout.read().decode()}"
        assert time.monotonic() < deadline, "no level_1 after 60 s"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    (run_dir,) = store.glob("*/*")
    stored = sorted(p.name for p in run_dir.iterdir() if p.is_dir())
    assert "level_1" in stored and "level_2" not in stored, f"not killed during round 2: {stored}"

    resumed = run_experiment(SLOW, run_store=store, device="cpu")
    assert resumed.run.path == run_dir
    assert not [p for p in store.rglob("*") if p.name.startswith(TMP_PREFIX)]
    assert_same_results(resumed, reference)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_data_different_data_seed_different_data():
    clone = changed(TINY, clone=True)
    for config in (TINY, clone):
        first, again = load_data(config), load_data(config)
        for a, b in zip(first, again):  # train and test
            assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
        other_seed = load_data(changed(config, seed=1))  # seed: initialization, batches, masks
        assert all(torch.equal(a.x, b.x) for a, b in zip(first, other_seed))
        other_data = load_data(changed(config, data_seed=1))
        assert not any(torch.equal(a.x, b.x) for a, b in zip(first, other_data))
    ds = load_data(TINY)[0]
    assert torch.equal(gaussian_clone(ds, seed=3).x, gaussian_clone(ds, seed=3).x)
    assert not torch.equal(gaussian_clone(ds, seed=3).x, gaussian_clone(ds, seed=4).x)


def test_same_seeds_same_results_and_figure_data_other_seeds_differ(tmp_path):
    runs = {
        name: run_experiment(config, run_store=tmp_path / name, device="cpu")
        for name, config in [
            ("first", TINY),
            ("again", TINY),
            ("seed", changed(TINY, seed=1)),
            ("data_seed", changed(TINY, data_seed=1)),
        ]
    }
    assert_same_results(runs["first"], runs["again"])
    pd.testing.assert_frame_equal(level_summary(runs["first"]), level_summary(runs["again"]), check_exact=True)
    # seeds stacked as replicas of one training give each seed the bits it gets alone (CPU)
    together = run_experiments([TINY, changed(TINY, seed=1)], run_store=tmp_path / "together", device="cpu")
    assert_same_results(together[0], runs["first"])
    assert_same_results(together[1], runs["seed"])
    for other in ("seed", "data_seed"):
        for level in ("level_0", "level_2", "random_2"):
            state, other_state = runs["first"].run.load(level, "state"), runs[other].run.load(level, "state")
            assert not torch.equal(state["weights.0"], other_state["weights.0"]), (other, level)
        assert not torch.equal(runs["first"].masks("level_2")[0], runs[other].masks("level_2")[0]), other
        assert runs["first"].metrics("level_2") != runs[other].metrics("level_2"), other


# --------------------------------------------------------------------------- concurrency


def test_two_processes_on_one_run_store_compute_each_level_once(reference, start, tmp_path):
    store, log, go = tmp_path / "runs", tmp_path / "log", tmp_path / "go"
    processes = [start(SLOW, store, log, str(go)) for _ in range(2)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.ready-*"))) < 2:
        for p in processes:
            assert p.poll() is None, p.stdout.read().decode()
        assert time.monotonic() < deadline, "the processes did not start"
        time.sleep(0.01)
    go.touch()
    for p in processes:
        output = p.communicate(timeout=120)[0].decode()
        assert p.returncode == 0, output

    events = [line.split() for line in log.read_text().splitlines()]
    times = {(pid, what): float(value) for pid, what, value in events if what in ("enter", "exit")}
    pids = {pid for pid, _ in times}
    assert len(pids) == 2
    assert max(times[pid, "enter"] for pid in pids) < min(times[pid, "exit"] for pid in pids), (
        "the two runs did not overlap, so the lock was not exercised"
    )
    saved = sorted(level for _, what, level in events if what == "saved")
    assert saved == reference.run.levels(), "each level computed exactly once, by one process"

    (run_dir,) = store.glob("*/*")
    assert sorted(p.name for p in run_dir.iterdir() if p.is_dir()) == reference.run.levels()
    assert not [p for p in run_dir.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert_same_results(Experiment(SLOW, store), reference)
