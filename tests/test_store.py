import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from imprf_utils.errors import RunStoreError
from imprf_utils.output import TMP_PREFIX
from imprf_utils.training.config import ExperimentConfig
from imprf_utils.training.experiment import Experiment
from imprf_utils.training.runner import run_experiment
from imprf_utils.training.store import SCHEMA_VERSION, Run, config_hash

from conftest import TINY, assert_same_results, leftovers

SLOW = dataclasses.replace(TINY, dataset_options={"n": 600, "size": 8}, hidden=(32, 32), steps=1000, eval_every=250)
"""About 0.8 s a round on one thread: long enough to be killed in the middle of round 2.

The subprocess tests run IMP for real; the test process and the subprocesses all use one
thread, as bit-identity is asked of them."""

RUN = """
import json, os, sys, time
import torch
torch.set_num_threads(1)
from imprf_utils.training import store
from imprf_utils.training.config import ExperimentConfig
from imprf_utils.training.runner import run_experiment

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


def test_config_hash_is_canonical_and_sensitive():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_run_directory_holds_the_resolved_config(tmp_path):
    run = Run(tmp_path, "toy", {"lr": 0.1, "seed": 3})
    stored = json.loads((run.path / "config.json").read_text())
    assert stored == {"lr": 0.1, "seed": 3, "schema_version": SCHEMA_VERSION}
    assert run.path.parent.name == "toy" and run.path.name == config_hash(stored)
    assert Run(tmp_path, "toy", {"seed": 3, "lr": 0.1}).path == run.path


def test_level_roundtrip_with_weights_only_loading(tmp_path):
    run = Run(tmp_path, "toy", {})
    state = {"weight": torch.randn(2, 3), "mask": torch.rand(2, 3) > 0.5}
    run.save("level_1", {"state": state}, {"accuracy": 0.5})
    assert run.has("level_1") and run.levels() == ["level_1"]
    loaded = run.load("level_1", "state")
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert run.metrics("level_1") == {"accuracy": 0.5}


def test_a_failed_save_leaves_no_level(tmp_path, monkeypatch):
    run = Run(tmp_path, "toy", {})
    calls = []

    def failing_save(obj, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        torch.serialization.save(obj, path)

    monkeypatch.setattr("imprf_utils.training.store.torch.save", failing_save)
    with pytest.raises(OSError):
        run.save("level_1", {"state": {"w": torch.ones(1)}, "masks": {"m": torch.ones(1)}}, {})
    assert not run.has("level_1")
    assert not [p for p in run.path.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_partial_directories_are_cleaned(tmp_path):
    run = Run(tmp_path, "toy", {})
    (run.path / f"{TMP_PREFIX}level_2-abc").mkdir()
    run.clean_partial()
    assert run.levels() == []
    assert not any(p.name.startswith(TMP_PREFIX) for p in run.path.iterdir())


def test_other_schema_version_is_refused(tmp_path):
    run = Run(tmp_path, "toy", {"lr": 0.1})
    config = json.loads((run.path / "config.json").read_text())
    config["schema_version"] = SCHEMA_VERSION - 1
    (run.path / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunStoreError, match="schema version"):
        Run(tmp_path, "toy", {"lr": 0.1})


def test_unwritable_store_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RunStoreError, match="not writable"):
        Run(blocker / "runs", "toy", {})


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
