"""Sweeps: many experiments fanned out through a standard executor, coordinated by the run store.

A replication is many independent runs (seeds × data and clone × ablations). ``run_sweep``
hands them to any executor with ``submit`` — none (in process), a
``concurrent.futures.ProcessPoolExecutor``, a ``dask.distributed.Client`` or submitit's
``AutoExecutor`` (SLURM) — and adds no scheduler of its own: the run store on a shared
filesystem is the only coordination. A run whose levels are all stored is reused without
being submitted; a run in progress elsewhere holds its run's lock, so a task reaching it
waits and then reuses what the other process wrote; a task killed mid-level leaves a
temporary directory that the next attempt removes before resuming at the last finished
level (``store.py``). Configs that differ only in ``seed`` go to one task, which trains them
as stacked replicas (``run_experiments``): that is where the suite's speed comes from.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import socket
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from imprf_utils.output import DEFAULT_RUN_STORE
from imprf_utils.training.config import ExperimentConfig, config_defaults
from imprf_utils.training.experiment import Experiment
from imprf_utils.training.presets import notebook_configs
from imprf_utils.training.runner import run_experiments
from imprf_utils.training.train import progress_enabled


@dataclass
class RunOutcome:
    """What a sweep did with one config."""

    config: ExperimentConfig
    status: str
    """One of "ran", "reused", "failed". Its task waits for any process holding the run, then runs
    what is missing ("ran") or finds nothing missing ("reused"). Two tasks that check the same
    run at the same instant may both say "ran"; the run's lock still lets only one train it."""
    path: str
    """Its run directory."""
    levels: int = 0
    """Levels this sweep trained for it."""
    seconds: float = 0.0
    """Wall time of the task that ran it (shared by the seeds trained with it)."""
    host: str = ""
    """Machine the task ran on."""
    error: str | None = None
    """A failed task's exception (type, message, and the file and line that raised it)."""


@dataclass
class SweepSummary:
    """Every config's outcome, in the order given to ``run_sweep``, and the sweep's wall time."""

    outcomes: list[RunOutcome]
    seconds: float

    @property
    def ran(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "ran"]

    @property
    def reused(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "reused"]

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def __str__(self) -> str:
        lines = [
            f"{len(self.outcomes)} runs in {self.seconds:.1f} s: "
            f"{len(self.ran)} ran, {len(self.reused)} reused, {len(self.failed)} failed"
        ]
        # Name each run by its dataset and the fields that set it apart (an ablation's).
        values = [o.config.as_dict() for o in self.outcomes]
        defaults = config_defaults()
        varying = [
            k for k in defaults
            if k not in ("dataset", "clone", "seed", "compare_levels") and len({repr(v[k]) for v in values}) > 1
        ]
        names = [" ".join([o.config.name, *(f"{k}={v[k]}" for k in varying if v[k] != defaults[k])])
                 for o, v in zip(self.outcomes, values)]
        width = max(map(len, names), default=0)
        for o, name in zip(self.outcomes, names):
            where = f"{o.levels} levels in {o.seconds:.1f} s on {o.host}" if o.status == "ran" else ""
            lines.append(f"  {o.status:<7} {name:<{width}}  seed {o.config.seed:<3} {o.path}  {where}".rstrip())
            if o.error:
                lines.append(f"          {o.error}")
        return "\n".join(lines)


def preset_configs(
    parameters: Mapping[str, Any],
    *,
    seeds: Sequence[int] | None = None,
    datasets: Sequence[str] | None = None,
    ablations: bool = False,
    **changes: Any,
) -> list[ExperimentConfig]:
    """The configs the notebooks read for a preset (``presets.notebook_configs``), for several datasets.

    ``datasets`` defaults to the preset's dataset and ``<dataset>-clone``; a ``-clone``
    suffix means the Gaussian clone's group, the plain name the data's group and, with
    ``ablations``, notebook 06's groups on it. The preset's ``dataset_options`` apply to
    its own dataset only (another gets its defaults). ``changes`` override config fields
    (e.g. ``data_dir``).
    """
    if datasets is None:
        datasets = [parameters["dataset"], parameters["dataset"] + "-clone"]
    configs = []
    for name in datasets:
        dataset = name.removesuffix("-clone")
        options = parameters.get("dataset_options", {}) if dataset == parameters["dataset"] else {}
        groups = notebook_configs(
            {**parameters, "dataset": dataset, "dataset_options": options}, seeds=seeds, ablations=ablations, **changes
        )
        configs += groups.clone if name.endswith("-clone") else [c for c in groups.all() if not c.clone]
    return configs


def run_sweep(
    configs: Sequence[ExperimentConfig],
    executor: Any = None,
    *,
    run_store: str | os.PathLike = DEFAULT_RUN_STORE,
    device: str = "auto",
    threads: int | None = None,
    dense_only: bool = False,
) -> SweepSummary:
    """Run every config not yet in ``run_store``, one task per group of seeds; never raises for a task.

    ``executor``: None runs the tasks here, one after the other; otherwise anything whose
    ``submit(fn, *args)`` returns an object with ``result()`` — a ``concurrent.futures``
    executor, submitit's ``AutoExecutor`` (a job per task), or a ``dask.distributed.Client``
    (used through ``client.get_executor(pure=False)``: a task writes files, so it must run
    even if an identical one ran before). The run store must be one path that the caller
    and every worker see (a shared filesystem). ``device`` is resolved on the worker
    ("auto": its GPU if it has one). ``threads``: torch threads in each task (None: the
    worker's default; dask's workers start with OMP_NUM_THREADS=1). A task that raises, or
    whose worker is lost for good, marks its configs failed and the others go on; dask
    reruns a task whose worker died, and the rerun resumes from the store. ``dense_only``: train
    (and count as missing) the dense level alone (``run_experiments``'s ``dense_only``).
    """
    if executor is not None and not isinstance(executor, cf.Executor) and hasattr(executor, "get_executor"):
        executor = executor.get_executor(pure=False)  # a dask.distributed.Client
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor {executor!r}: expected None or an executor with submit(fn, *args)")
    start = time.perf_counter()
    paths, outcomes = [], {}
    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        exp = Experiment(config, run_store)  # creates the run directory: a bad store fails here, once
        paths.append(str(exp.run.path))
        if exp.missing_levels(dense_only):
            groups.setdefault(task_key(config), []).append(i)
        else:
            outcomes[i] = RunOutcome(config, "reused", paths[i])

    bar = tqdm(total=len(configs), desc="sweep", disable=not progress_enabled())
    bar.update(len(outcomes))

    def finished(indices: list[int], future: cf.Future) -> None:
        try:
            outcomes.update(zip(indices, future.result()))
        except Exception as err:  # the task's own error, or its worker lost for good
            last = traceback.extract_tb(err.__traceback__)[-1:]
            text = f"{type(err).__name__}: {err}" + "".join(f" ({f.filename}:{f.lineno})" for f in last)
            outcomes.update((i, RunOutcome(configs[i], "failed", paths[i], error=text)) for i in indices)
        bar.update(len(indices))
        bar.set_postfix({s: sum(o.status == s for o in outcomes.values()) for s in ("ran", "reused", "failed")})

    tasks = {
        tuple(indices): ([configs[i] for i in indices], str(run_store), device, threads, dense_only)
        for indices in groups.values()
    }
    if executor is None:
        for indices, args in tasks.items():
            finished(list(indices), _called(run_group, args))
    else:
        pending = {_as_future(executor.submit(run_group, *args)): list(indices) for indices, args in tasks.items()}
        for future in cf.as_completed(pending):
            finished(pending[future], future)
    bar.close()
    return SweepSummary([outcomes[i] for i in range(len(configs))], time.perf_counter() - start)


def task_key(config: ExperimentConfig) -> str:
    """The key shared by configs that go to one task: equal but for ``seed`` and ``data_seed`` (which
    follows the seed by default; ``run_experiments`` stacks the seeds, each reading its own data). The
    data and its clone are tasks of their own, so two workers can train them at once
    (``run_experiments`` stacks them when one process gets both)."""
    return json.dumps({**config.as_dict(), "seed": None, "data_seed": None}, sort_keys=True)


def run_group(
    configs: list[ExperimentConfig], run_store: str, device: str, threads: int | None, dense_only: bool = False
) -> list[RunOutcome]:
    """One task: configs differing only in seed, trained together (their dense level alone with
    ``dense_only``); runs on the worker."""
    if threads is not None:
        torch.set_num_threads(threads)
    experiments = [Experiment(config, run_store) for config in configs]
    missing = []
    for exp in experiments:
        with exp.run.lock():  # wait for a process running it elsewhere, then see what it left
            missing.append(len(exp.missing_levels(dense_only)))
    start = time.perf_counter()
    run_experiments(configs, run_store=run_store, device=device, dense_only=dense_only)
    seconds = time.perf_counter() - start
    host = socket.gethostname()
    return [
        RunOutcome(exp.config, "ran" if n else "reused", str(exp.run.path), n, seconds if n else 0.0, host)
        for exp, n in zip(experiments, missing)
    ]


def _called(fn: Any, args: tuple) -> cf.Future:
    """``fn(*args)`` run here, as a finished future (its result or its exception)."""
    future: cf.Future = cf.Future()
    try:
        future.set_result(fn(*args))
    except Exception as err:
        future.set_exception(err)
    return future


def _as_future(job: Any) -> cf.Future:
    """A concurrent.futures.Future for an object with ``result()`` (a submitit job): a thread waits on it."""
    if isinstance(job, cf.Future):
        return job
    future: cf.Future = cf.Future()

    def wait() -> None:
        try:
            future.set_result(job.result())
        except BaseException as err:
            future.set_exception(err)

    threading.Thread(target=wait, daemon=True).start()
    return future
