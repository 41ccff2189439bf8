"""Command line: ``python -m imprf_utils sweep`` runs a preset's seeds × datasets through an executor.

    python -m imprf_utils sweep --preset smoke --executor processes --workers 2
    python -m imprf_utils sweep --preset paper --seeds 0 1 2 --datasets imagenet32 imagenet32-clone \\
        --data-dir /data/imagenet32 --executor dask --scheduler tcp://HOST:8786
    python -m imprf_utils sweep --preset paper --data-dir /data/imagenet32 --executor slurm \\
        --partition gpu --gpus 1 --time-min 2880
    python -m imprf_utils sweep --preset gpu --robustness      # and notebook 07's pilot and matrix
    python -m imprf_utils sweep --preset gpu --bn-regime       # and notebook 08's candidates and wide cells

The notebooks then read the runs from the same run store: give them the same preset,
``data_dir`` and ``run_store``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from imprf_utils.errors import BAD_INPUT, ConfigError
from imprf_utils.notebooks.batchnorm_regime import sweep_regimes
from imprf_utils.notebooks.robustness import sweep_matrix
from imprf_utils.output import DEFAULT_RUN_STORE
from imprf_utils.training.presets import load_preset
from imprf_utils.training.sweep import preset_configs, run_sweep

EXECUTORS = ("local", "processes", "dask", "slurm")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m imprf_utils", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    p = commands.add_parser("sweep", help="train a preset's seeds × datasets, reusing the run store")
    p.add_argument("--preset", default="default", help="NAME of presets/NAME.yaml, or a YAML file's path (default: default)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the preset's)")
    p.add_argument(
        "--datasets", nargs="+", help="dataset names; NAME-clone is its Gaussian clone (default: the preset's and its clone)"
    )
    p.add_argument("--ablations", action="store_true", help="also notebook 06's runs (superclasses, training fractions)")
    p.add_argument("--robustness", action="store_true", help="then notebook 07's pilot and matrix (skewed_texture)")
    p.add_argument("--bn-regime", action="store_true", help="then notebook 08's candidates and wide cells (BatchNorm)")
    p.add_argument("--run-store", help="run store on a filesystem every worker sees (default: the preset's, else $IMPRF_RUN_STORE or runs/)")
    p.add_argument("--data-dir", help="folder of a real dataset's files, as the workers see it (default: the preset's)")
    p.add_argument("--device", help="auto, cpu or cuda, resolved on each worker (default: the preset's)")
    p.add_argument("--threads", type=int, help="torch threads per task (default: the worker's; processes: CPUs / workers)")
    p.add_argument("--executor", default="local", choices=EXECUTORS, help="where tasks run (default: local, in this process)")
    p.add_argument("--workers", type=int, help="processes: pool size (default: CPU count); dask without --scheduler: local workers")
    p.add_argument("--scheduler", help="dask: scheduler address, e.g. tcp://HOST:8786 (default: a LocalCluster here)")
    p.add_argument("--partition", help="slurm: partition")
    p.add_argument("--time-min", type=int, default=24 * 60, help="slurm: time limit of a job in minutes (default: 1440)")
    p.add_argument("--gpus", type=int, default=1, help="slurm: GPUs per job (default: 1)")
    p.add_argument("--log-dir", default="slurm-logs", help="slurm: submitit's job files and logs, on the shared filesystem")
    return top


def executor_for(args: argparse.Namespace) -> tuple[Any, int | None]:
    """The executor ``--executor`` names and the torch threads its tasks should use."""
    if args.executor == "processes":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        workers = args.workers or os.cpu_count() or 1
        threads = args.threads or max(1, (os.cpu_count() or 1) // workers)  # no oversubscription
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")), threads
    if args.executor == "dask":
        try:
            from dask.distributed import Client
        except ImportError as err:
            raise ConfigError(f"--executor dask needs dask.distributed ({err}): pip install -e '.[dask]'") from err
        if args.scheduler:
            return Client(args.scheduler), args.threads
        return Client(n_workers=args.workers or os.cpu_count() or 1, threads_per_worker=1), args.threads
    if args.executor == "slurm":
        try:
            import submitit
        except ImportError as err:
            raise ConfigError(f"--executor slurm needs submitit ({err}): pip install -e '.[slurm]'") from err
        if shutil.which("sbatch") is None:
            raise ConfigError("--executor slurm: no sbatch on this machine; run the sweep from a SLURM login node")
        executor = submitit.AutoExecutor(folder=args.log_dir, cluster="slurm")
        executor.update_parameters(
            name="imprf-sweep", timeout_min=args.time_min, gpus_per_node=args.gpus, slurm_partition=args.partition
        )
        return executor, args.threads
    return None, args.threads  # local: in this process


def sweep(args: argparse.Namespace) -> int:
    """Run the sweep, print its summary; exit status 1 if a run failed."""
    preset = load_preset(args.preset)
    changes = {} if args.data_dir is None else {"data_dir": args.data_dir}  # hashed as given: pass notebooks the same
    configs = preset_configs(preset, seeds=args.seeds, datasets=args.datasets, ablations=args.ablations, **changes)
    run_store = Path(args.run_store or preset.get("run_store") or DEFAULT_RUN_STORE).resolve()
    device = args.device or preset.get("device") or "auto"
    executor, threads = executor_for(args)
    print(f"sweep: {len(configs)} runs of preset {args.preset!r} into {run_store}, executor {args.executor}", flush=True)
    try:
        summaries = [run_sweep(configs, executor, run_store=run_store, device=device, threads=threads)]
        parameters = preset if args.seeds is None else {**preset, "seeds": args.seeds}
        if args.robustness and not summaries[0].failed:
            summaries += sweep_matrix(parameters, executor, run_store=run_store, device=device, threads=threads)
        if args.bn_regime and not summaries[0].failed:
            summaries += sweep_regimes(parameters, executor, run_store=run_store, device=device, threads=threads)
    finally:
        if hasattr(executor, "get_executor"):  # a dask Client: close() leaves a remote cluster running
            executor.close()
        elif hasattr(executor, "shutdown"):
            executor.shutdown()
    for summary in summaries:
        print(summary)
    return 1 if any(summary.failed for summary in summaries) else 0


def main(argv: list[str] | None = None) -> int:
    """The command line; bad input (``errors.BAD_INPUT``) is one line on stderr and exit status 2, not a traceback."""
    p = parser()
    args = p.parse_args(argv)
    try:
        return sweep(args)
    except BAD_INPUT as err:
        p.exit(2, f"{p.prog}: error: {err}\n")


if __name__ == "__main__":
    sys.exit(main())
