"""Run the notebook suite with a preset: ``python -m imprf_utils.report.reproduce --preset default``.

Each notebook runs with papermill, in order, into the output folder, with the preset's
parameters that the notebook declares; then an ``index.html`` report (``index.write_index``)
gives the preset and its scale, and per notebook its run time, its claims roll-up
(``claims_NN.json``) and its figures with captions, linking every executed notebook (as HTML).
``--in-place``, ``--golden`` and ``--results`` write the committed notebooks, the golden
copies of tests/test_portability.py and a preset's committed results instead. Every mode
records each notebook's wall time in ``run_times.json`` beside the figures it writes
(``run_times.record_run_time``; ``--golden``, whose figures are temporary: beside the copies).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import papermill
from jupyter_client import AsyncKernelManager
from traitlets import default

from imprf_utils.errors import BAD_INPUT
from imprf_utils.numerics import pin_this_process
from imprf_utils.output import FIGURES, RESULTS, figures_root
from imprf_utils.report.index import write_index
from imprf_utils.report.run_times import record_run_time
from imprf_utils.training.presets import load_preset
from imprf_utils.training.train import PROGRESS_LOG

TIMEOUT_S = 6 * 3600  # per cell: a killed kernel must not hang papermill forever
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
"""The kernel logs errors only: where it listens on TCP (127.0.0.1; systems without Unix sockets),
its one routine warning, "Kernel is running over TCP without encryption", would print for every notebook."""


class SocketFileKernelManager(AsyncKernelManager):
    """A kernel reached through Unix socket files in a folder of its own, not through TCP ports.

    jupyter_client picks five free ports and only then starts the kernel that binds them, so two
    notebooks started at once (two runners, ``pytest -n 2``) can be handed the same port and one
    kernel dies ("Address already in use"). Socket files cannot collide. The folder is a short
    temporary one, as a socket's path must stay under 108 bytes; it goes with the kernel.
    """

    @default("transport")
    def _socket_files(self) -> str:
        return "ipc"

    @default("ip")
    def _socket_folder(self) -> str:
        return os.path.join(tempfile.mkdtemp(prefix="imprf-kernel-"), "socket")

    def cleanup_ipc_files(self) -> None:
        super().cleanup_ipc_files()
        shutil.rmtree(os.path.dirname(self.ip), ignore_errors=True)


SOCKET_FILES = os.name == "posix"
"""Whether kernels listen on socket files (SocketFileKernelManager); Windows has no Unix sockets."""


def kernel_options() -> dict:
    """papermill's options for the kernel: quiet, and over socket files where the system has them."""
    manager = {"kernel_manager_class": SocketFileKernelManager} if SOCKET_FILES else {}
    return {"kernel_name": "python3", "extra_arguments": KERNEL_ARGUMENTS, **manager}


def run_notebook(
    notebook: Path, out_dir: Path, preset: dict, preset_name: str | None = None, *, progress: bool = False
) -> tuple[Path, float]:
    """Execute one notebook with the preset parameters it declares; return its output path and time.

    ``preset_name`` (default: the preset's own ``preset`` entry) is injected as the notebook's
    ``preset`` parameter, so its claims record and default figures folder carry it. A cell
    progress bar shows on a terminal; ``progress`` also prints each training as it finishes.
    """
    declared = {p for p in papermill.inspect_notebook(str(notebook))}
    values = {**preset, "preset": preset_name or preset.get("preset", "default")}
    parameters = {k: v for k, v in values.items() if k in declared}
    output = out_dir / notebook.name
    start = time.perf_counter()
    with trainings_printed() if progress else contextlib.nullcontext():
        execute(notebook, output, parameters=parameters)
    return output, time.perf_counter() - start


def execute(notebook: Path, output: Path, **options) -> None:
    """papermill's run of ``notebook`` into ``output``, in its folder, with the runner's kernel.

    The kernel draws no progress bars (IMPRF_PROGRESS=0): a bar saved in a notebook is a widget
    that shows a frozen "0%" wherever the notebook is read, and only in the notebooks whose runs
    the store lacked. The terminal has each training's line instead (``trainings_printed``).
    """
    with environment(IMPRF_PROGRESS="0"):
        papermill.execute_notebook(
            str(notebook), str(output), cwd=str(notebook.parent), execution_timeout=TIMEOUT_S,
            progress_bar=sys.stderr.isatty(), **kernel_options(), **options,
        )


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables, which a kernel started in the block inherits, until the block ends."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def trainings_printed(interval_s: float = 1.0) -> Iterator[None]:
    """Print, indented, each line the kernel reports (``train.report_progress``) while the block runs.

    The kernel inherits $IMPRF_PROGRESS_LOG, pointed at a temporary file that a thread
    follows every ``interval_s``; whatever is left is printed when the block ends.
    """
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "progress.log"
        log.touch()
        done = threading.Event()

        def follow() -> None:
            with log.open(encoding="utf-8") as lines:
                while True:
                    finished = done.wait(interval_s)
                    for line in lines.readlines():
                        print(f"    {line.rstrip()}", flush=True)
                    if finished:
                        return

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        try:
            with environment(**{PROGRESS_LOG: str(log)}):
                yield
        finally:
            done.set()
            thread.join()


def strip_volatile_metadata(path: Path) -> None:
    """Drop papermill's and Jupyter's per-cell timings, so committed notebooks diff cleanly."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def refresh_committed(notebook: Path) -> float:
    """Re-execute a notebook in place with its own (default) parameters, for committing its outputs.

    Its figures and claims record go to the tracked ``figures/`` (the only run that writes there).
    """
    start = time.perf_counter()
    with environment(IMPRF_FIGURES=str(FIGURES)), trainings_printed():
        execute(notebook, notebook)
    strip_volatile_metadata(notebook)
    return time.perf_counter() - start


def write_golden(notebook: Path, golden_dir: Path) -> float:
    """Execute a notebook with the smoke preset into ``golden_dir``, for tests/test_portability.py.

    Its run store and figures go to a temporary folder (IMPRF_RUN_STORE, IMPRF_FIGURES), so the
    copy names no path of this machine; nbval re-executes it on emulated machines.
    """
    golden_dir.mkdir(parents=True, exist_ok=True)
    smoke = {**load_preset("smoke"), "run_store": None, "figures_dir": None}
    with tempfile.TemporaryDirectory() as scratch, environment(IMPRF_FIGURES=f"{scratch}/figures", IMPRF_RUN_STORE=f"{scratch}/runs"):
        output, seconds = run_notebook(notebook, golden_dir, smoke, "smoke")
    strip_volatile_metadata(output)
    return seconds


def main(argv: list[str] | None = None) -> int:
    """The command line; bad input (``errors.BAD_INPUT``, raised here or in a notebook's kernel) is one
    line on stderr and exit status 2, not a traceback."""
    parser = argparse.ArgumentParser(prog="python -m imprf_utils.report.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", help="a presets/NAME.yaml name, or a YAML file's path")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default build/PRESET)")
    parser.add_argument(
        "--in-place", action="store_true", help="re-execute the notebooks in place with their defaults (to commit outputs)"
    )
    parser.add_argument(
        "--golden", type=Path, metavar="DIR", help="execute the notebooks with the smoke preset into DIR (tests/golden)"
    )
    parser.add_argument(
        "--results", action="store_true",
        help="execute the notebooks with the preset into results/PRESET/, figures and claims records beside them (to commit)",
    )
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        return reproduce(args)
    except BAD_INPUT as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


def write_results(notebooks: list[Path], preset: dict, name: str) -> int:
    """Execute ``notebooks`` with ``preset`` into ``results/<name>/``, their figures and claims records
    under ``results/<name>/<dataset>/``, without the volatile metadata: a preset's results, to commit."""
    out_dir = RESULTS / name
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, notebook in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {notebook.name} with preset {name} -> {out_dir} ...", flush=True)
        here = {**preset, "figures_dir": os.path.relpath(out_dir, notebook.resolve().parent)}  # papermill's cwd: the notebook's folder
        output, seconds = run_notebook(notebook.resolve(), out_dir, here, name, progress=True)
        strip_volatile_metadata(output)
        record_run_time(out_dir, notebook, seconds, name)
        print(f"  done in {seconds:.0f} s -> {output}", flush=True)
    return 0


def reproduce(args: argparse.Namespace) -> int:
    """Run the notebooks as ``main``'s arguments say, then write the index (or refresh them in place)."""
    pin_this_process()  # the kernels start with the pinned numerics (imprf_utils.numerics)
    if args.in_place or args.golden:
        times, preset_name = (FIGURES, "default") if args.in_place else (args.golden, "smoke")  # where run_times.json goes
        for notebook in args.notebooks:
            print(f"{'refreshing' if args.in_place else 'golden copy of'} {notebook.name} ...", flush=True)
            seconds = refresh_committed(notebook.resolve()) if args.in_place else write_golden(notebook.resolve(), args.golden)
            record_run_time(times, notebook, seconds, preset_name)
            print(f"  done in {seconds:.0f} s", flush=True)
        return 0
    preset = load_preset(args.preset)
    name = Path(args.preset).stem
    if args.results:
        return write_results(args.notebooks, preset, name)
    out_dir = args.out or Path("build") / name
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = figures_root(preset.get("figures_dir") or None, name, relative_to=args.notebooks[0].resolve().parent)
    executed = []
    for i, notebook in enumerate(args.notebooks, 1):
        print(f"[{i}/{len(args.notebooks)}] {notebook.name} with preset {name} ...", flush=True)
        try:
            executed.append(run_notebook(notebook.resolve(), out_dir, preset, name, progress=True))
        except papermill.PapermillExecutionError as err:
            bad_input = {cls.__name__: cls for cls in BAD_INPUT}
            if err.ename not in bad_input:
                raise
            raise bad_input[err.ename](f"{notebook.name}: {err.evalue} (as run: {out_dir / notebook.name})") from err
        record_run_time(figures, notebook, executed[-1][1], name)
        print(f"  done in {executed[-1][1]:.0f} s -> {executed[-1][0]}", flush=True)
    index = write_index(out_dir, name, executed, figures, preset)
    print(f"index: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
