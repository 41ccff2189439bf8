"""Sweeps (issue 6): a real Dask LocalCluster, a worker killed mid-level, submitit, the command line.

The oracle is ``run_experiments`` in this process into another store: every level's masks
and metrics of a sweep must equal it bit for bit. Everything runs on one torch thread (the
test process here, ``threads=1`` in the tasks), as bit-identity is asked of them.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cloudpickle
import pytest
import torch

from imprf_utils.__main__ import main
from imprf_utils.output import TMP_PREFIX
from imprf_utils.training import store
from imprf_utils.training.config import ExperimentConfig
from imprf_utils.training.experiment import METHODS, Experiment, Level
from imprf_utils.training.presets import load_preset, notebook_configs
from imprf_utils.training.runner import run_experiments
from imprf_utils.training.sweep import preset_configs, run_sweep

from conftest import TINY

distributed = pytest.importorskip("distributed")
submitit = pytest.importorskip("submitit")

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = [ExperimentConfig(**{**TINY.as_dict(), "seed": s, "clone": c}) for c in (False, True) for s in (0, 1)]
"""2 seeds × data and clone: two tasks of two stacked seeds, a fraction of a second each."""


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, one_thread) -> list[Experiment]:
    return run_experiments(CONFIGS, run_store=tmp_path_factory.mktemp("reference"), device="cpu")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def levels(exp: Experiment) -> list[Level]:
    return [level for method in METHODS for level in exp.levels(method)]


def assert_same_runs(run_store: Path, reference: list[Experiment]) -> None:
    """Every level of every run is in place, loads, and equals the reference bit for bit."""
    assert not list(run_store.rglob(f"{TMP_PREFIX}*")), "temporary directories left behind"
    for ref in reference:
        exp = Experiment(ref.config, run_store)
        assert exp.run.levels() == sorted(level.directory for level in levels(ref))
        for level in levels(ref):
            assert exp.metrics(level) == ref.metrics(level), (exp.run.path, level)
            assert all(torch.equal(a, b) for a, b in zip(exp.masks(level), ref.masks(level))), (exp.run.path, level)
            exp.model(level)  # state and masks load into a network


class Hooked:
    """An executor that runs each task under a hook installed in the worker, for that task only."""

    def __init__(self, inner, hook: str, path: Path):
        self.inner, self.hook, self.path = inner, hook, str(path)

    def submit(self, fn, *args):
        return self.inner.submit(in_worker, self.hook, self.path, fn, *args)


def in_worker(hook, path, fn, *args):
    """``log``: append each level saved to ``path``. ``die``: the first task to have written
    level_1's files (``path`` does not exist yet) kills its own process before moving them into place."""
    save, rename = store.Run.save, os.rename

    def logged_save(self, level, *a, **k):
        save(self, level, *a, **k)
        with open(path, "a") as f:
            f.write(f"{self.path.name}/{level}\n")

    def rename_or_die(src, dst):
        if os.path.basename(dst) == "level_1":
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        rename(src, dst)

    if hook == "log":
        store.Run.save = logged_save
    else:
        os.rename = rename_or_die
    try:
        return fn(*args)
    finally:
        store.Run.save, os.rename = save, rename


@pytest.fixture
def hooks_by_value():
    """The workers cannot import this test module: send ``in_worker`` by value."""
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


class Recording:
    """An executor that records the seeds of each task it submits."""

    def __init__(self, inner):
        self.inner, self.tasks = inner, []

    def submit(self, fn, configs, *args):
        self.tasks.append([(c.clone, c.seed) for c in configs])
        return self.inner.submit(fn, configs, *args)


def test_dask_sweep_equals_in_process_run_and_a_second_sweep_reuses_it(client, reference, tmp_path):
    executor = Recording(client.get_executor(pure=False))
    summary = run_sweep(CONFIGS, executor, run_store=tmp_path, device="cpu", threads=1)
    assert executor.tasks == [[(False, 0), (False, 1)], [(True, 0), (True, 1)]]  # seeds stacked in one task
    assert [o.status for o in summary.outcomes] == ["ran"] * 4, str(summary)
    assert [o.config for o in summary.outcomes] == CONFIGS
    assert {o.levels for o in summary.outcomes} == {len(levels(reference[0]))}
    assert_same_runs(tmp_path, reference)
    again = run_sweep(CONFIGS, client, run_store=tmp_path, device="cpu", threads=1)
    assert [o.status for o in again.outcomes] == ["reused"] * 4
    assert "4 runs in" in str(again) and "0 ran, 4 reused, 0 failed" in str(again)
    executor.tasks.clear()
    run_sweep(CONFIGS, executor, run_store=tmp_path, device="cpu", threads=1)
    assert executor.tasks == []  # finished runs are not even submitted


def test_worker_killed_mid_level_the_task_is_retried_and_the_runs_complete(
    client, reference, tmp_path, hooks_by_value
):
    marker = tmp_path / "killed"
    summary = run_sweep(
        CONFIGS, Hooked(client.get_executor(pure=False), "die", marker), run_store=tmp_path / "runs", threads=1
    )
    assert marker.exists(), "no worker was killed"
    assert not summary.failed, str(summary)
    assert_same_runs(tmp_path / "runs", reference)  # resumed at level_1: the same bits as uninterrupted


def test_two_sweeps_at_once_train_each_level_once(client, reference, tmp_path, hooks_by_value):
    """The second sweep's tasks wait on the run locks the first holds, then reuse its levels."""
    log = tmp_path / "saves.log"
    executor = Hooked(client.get_executor(pure=False), "log", log)
    pool = ThreadPoolExecutor(2)  # two drivers, one cluster, one store
    sweeps = [pool.submit(run_sweep, CONFIGS, executor, run_store=tmp_path / "runs", threads=1) for _ in range(2)]
    summaries = [s.result() for s in sweeps]
    pool.shutdown()
    saved = Counter(log.read_text().split())
    expected = {f"{Experiment(c, tmp_path / 'runs').run.path.name}/{level.directory}" for c in CONFIGS for level in levels(reference[0])}
    assert set(saved) == expected and set(saved.values()) == {1}, saved
    assert not any(s.failed for s in summaries)
    assert_same_runs(tmp_path / "runs", reference)


def test_slurm_path_with_submitits_local_executor(reference, tmp_path):
    executor = submitit.AutoExecutor(folder=tmp_path / "logs", cluster="local")
    executor.update_parameters(timeout_min=5)
    data = CONFIGS[:2]  # one job: seeds 0 and 1 stacked
    summary = run_sweep(data, executor, run_store=tmp_path / "runs", device="cpu", threads=1)
    assert [o.status for o in summary.outcomes] == ["ran", "ran"], str(summary)
    assert_same_runs(tmp_path / "runs", reference[:2])


def test_in_process_sweep_reports_a_failing_task_and_runs_the_others(reference, tmp_path):
    broken = ExperimentConfig(**{**TINY.as_dict(), "dataset": "imagenet32", "dataset_options": {}, "data_dir": str(tmp_path / "none")})
    summary = run_sweep([broken, *CONFIGS[:2]], run_store=tmp_path / "runs", device="cpu")
    assert [o.status for o in summary.outcomes] == ["failed", "ran", "ran"]
    assert "FileNotFoundError: imagenet32: no folder" in summary.failed[0].error
    assert "1 failed" in str(summary) and "FileNotFoundError" in str(summary)
    assert_same_runs(tmp_path / "runs", reference[:2])
    with pytest.raises(TypeError, match="submit"):
        run_sweep(CONFIGS, "dask", run_store=tmp_path / "runs")


def test_preset_configs_are_the_notebooks_groups():
    """The sweep's configs are notebook_configs' groups: 02-05 read data and clone, 06 adds its ablations."""
    preset = load_preset("default")
    groups = notebook_configs(preset, ablations=True)
    assert preset_configs(preset) == groups.data + groups.clone
    ablated = [c for g in (*groups.superclasses.values(), *groups.train_fractions.values()) for c in g]
    assert sorted(map(repr, preset_configs(preset, ablations=True))) == sorted(map(repr, groups.data + groups.clone + ablated))
    assert {c.superclasses for c in ablated} == {None, *preset["superclass_groupings"]}
    assert {c.train_fraction for c in ablated} == {1.0, *(f for f in preset["train_fractions"] if f != 1)}
    assert all(c.compare_levels == () for c in ablated)
    assert [c.seed for c in groups.clone] == preset["seeds"] and all(c.clone for c in groups.clone)
    assert all(c.compare_levels == tuple(preset["clone_compare_levels"]) for c in groups.clone)


def test_preset_configs_for_other_datasets_and_seeds():
    mine = preset_configs(load_preset("paper"), seeds=[4], datasets=["cifar10-clone"], data_dir="/d")
    assert [(c.dataset, c.clone, c.seed, c.data_dir, c.compare_levels) for c in mine] == [("cifar10", True, 4, "/d", (10,))]


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "IMPRF_PROGRESS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "imprf_utils", "sweep", *args], capture_output=True, text=True, env=env, cwd=ROOT
    )


def test_command_line_runs_then_reuses_a_preset(tmp_path):
    seeds = len(load_preset("smoke")["seeds"])  # per seed: data, clone and three ablations
    first = cli("--preset", "smoke", "--ablations", "--run-store", str(tmp_path), "--executor", "processes", "--workers", "1", "--threads", "1")
    assert first.returncode == 0, first.stderr
    assert f"{5 * seeds} runs in" in first.stdout and f"{5 * seeds} ran, 0 reused, 0 failed" in first.stdout
    assert "superclasses=semantic" in first.stdout and "train_fraction=0.5" in first.stdout
    second = cli("--preset", "smoke", "--run-store", str(tmp_path))  # in process: notebook 03's runs
    assert second.returncode == 0 and f"0 ran, {2 * seeds} reused, 0 failed" in second.stdout, second.stdout
    assert len(list(tmp_path.glob("*/*/config.json"))) == 5 * seeds


@pytest.mark.parametrize(
    "args, message",
    [
        (["--executor", "spark"], "invalid choice: 'spark' (choose from 'local', 'processes', 'dask', 'slurm')"),
        (["--preset", "fast"], "unknown preset 'fast'; valid presets:"),
        (["--datasets", "mnist"], "dataset 'mnist': valid names are"),
        (["--executor", "slurm"], "--executor slurm: no sbatch on this machine"),
    ],
)
def test_command_line_refuses_bad_input(args, message, capsys, tmp_path):
    if "slurm" in args and shutil.which("sbatch"):
        pytest.skip("SLURM is installed here")
    with pytest.raises(SystemExit) as exit:
        main(["sweep", "--preset", "smoke", "--run-store", str(tmp_path), *args])
    assert exit.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written


@pytest.mark.parametrize("executor, module, extra", [("dask", "dask.distributed", "dask"), ("slurm", "submitit", "slurm")])
def test_missing_optional_dependency_names_the_extra(executor, module, extra, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(SystemExit) as exit:
        main(["sweep", "--preset", "smoke", "--run-store", str(tmp_path), "--executor", executor])
    assert exit.value.code == 2
    assert f"--executor {executor} needs" in (err := capsys.readouterr().err) and f"pip install -e '.[{extra}]'" in err


def test_the_seeds_of_one_setting_are_one_task_though_each_draws_its_own_data():
    """data_seed follows the seed by default: the seeds still train together, stacked (run_experiments)."""
    from imprf_utils.training.presets import load_preset, notebook_configs
    from imprf_utils.training.sweep import task_key

    configs = notebook_configs(load_preset("default"))
    assert len({c.data_seed for c in configs.data}) == len(configs.data) > 1
    assert len({task_key(c) for c in configs.data}) == 1
    assert task_key(configs.data[0]) != task_key(configs.clone[0])  # the data and its clone: two tasks
