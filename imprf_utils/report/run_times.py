"""The notebooks' measured run times: ``run_times.json`` beside the figures a run of the suite writes, and its table.

The runner (``imprf_utils.report.reproduce``) records each notebook's wall time as it finishes
(`record_run_time`): one entry per notebook, merged into the file already there, with the preset,
the commit, the machine and the threads it ran on. So no notebook or page types a time: the HTML
index shows the file (``index.write_index``), and docs/performance.md's per-notebook table is the
one this command prints from the committed file:

    python -m imprf_utils.report.run_times figures/run_times.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from imprf_utils.output import cpu_model, git_commit, write_atomic

RUN_TIMES = "run_times.json"
"""The file's name, in the figures folder of a run (``figures/run_times.json`` for ``make notebooks``)."""
FIELDS = ("seconds", "preset", "commit", "machine", "threads")
"""What an entry holds, besides its notebook (the entry's key)."""


def machine() -> str:
    """This machine in words: CPU model, logical CPUs, architecture, and its GPU where torch sees one
    (e.g. "AMD EPYC 7B13, 2 CPUs, x86_64")."""
    import torch  # here, so that reading the file (the command, the index) does not load it

    words = [cpu_model(), f"{os.cpu_count()} CPUs", platform.machine()]
    if torch.cuda.is_available():
        words.append(f"GPU {torch.cuda.get_device_name(0)}")
    return ", ".join(words)


def kernel_threads() -> int | None:
    """The intra-op threads the notebooks' kernels start with: $OMP_NUM_THREADS, which the runner pins
    (``numerics.PINNED``); None when it is unset (torch then takes one per core)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else None


def read_run_times(path: str | Path) -> dict[str, dict[str, Any]]:
    """The entries of a ``run_times.json`` (notebook → its fields), checked."""
    path = Path(path)
    times = json.loads(path.read_text(encoding="utf-8"))
    for notebook, entry in times.items():
        missing = [field for field in FIELDS if field not in entry]
        if missing:
            raise ValueError(
                f"{path}: the entry of {notebook} lacks {missing}; rewrite it with the runner (python -m imprf_utils.report.reproduce)"
            )
    return times


def record_run_time(folder: str | Path, notebook: str | Path, seconds: float, preset: str) -> Path:
    """Merge one notebook's wall time into ``<folder>/run_times.json`` (written atomically); return its path.

    The entry, keyed by the notebook's name without its suffix ("03_imp_vs_oneshot_vs_random"),
    replaces that notebook's earlier one and leaves the others: {"seconds" (rounded to 0.1 s),
    "preset", "commit" (the repository's, or null), "machine" (`machine`), "threads" (`kernel_threads`)}.
    """
    path = Path(folder) / RUN_TIMES
    times = read_run_times(path) if path.is_file() else {}
    times[Path(notebook).stem] = {
        "seconds": round(float(seconds), 1),
        "preset": preset,
        "commit": git_commit(),
        "machine": machine(),
        "threads": kernel_threads(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(dict(sorted(times.items())), indent=1, ensure_ascii=False) + "\n")
    return path


COLUMNS = ("notebook", "seconds", "preset", "commit", "machine", "threads")
"""The columns of the run-times table (docs/performance.md, the HTML index)."""


def table_rows(times: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The entries as table cells under `COLUMNS`, one row per notebook in order: seconds to the
    second, the commit's first 7 characters ("unknown" if none), threads ("unpinned" if unset)."""
    return [
        [notebook, f"{entry['seconds']:.0f}", str(entry["preset"]), str(entry["commit"] or "unknown")[:7],
         str(entry["machine"]), "unpinned" if entry["threads"] is None else str(entry["threads"])]
        for notebook, entry in sorted(times.items())
    ]


def markdown_table(times: dict[str, dict[str, Any]]) -> str:
    """The entries as a markdown table (`table_rows`), as docs/performance.md holds it."""
    lines = [f"| {' | '.join(COLUMNS)} |", f"|{' --- |' * len(COLUMNS)}"]
    lines += [f"| {' | '.join(row)} |" for row in table_rows(times)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m imprf_utils.report.run_times",
        description="Print a run_times.json, written by the runner, as the markdown table of docs/performance.md.",
    )
    parser.add_argument("path", type=Path, help="e.g. figures/run_times.json (make notebooks writes it)")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        print(f"{args.path}: no such file; the runner writes it (make notebooks: figures/run_times.json)", file=sys.stderr)
        return 2
    print(markdown_table(read_run_times(args.path)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
