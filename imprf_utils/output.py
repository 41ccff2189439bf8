"""Where the suite's outputs go, what made them, and how a file is written: the one low module of output.

- Places: the repository (``REPOSITORY``), its tracked ``figures/`` (``FIGURES``) and ``results/``
  (``RESULTS``), the default run store (``DEFAULT_RUN_STORE``), and a run's figures folder
  (`figures_root`).
- Provenance (`provenance`): the parameters, package versions and git commit stored beside
  every figure and in every claims record; `cpu_model` names the machine's CPU.
- Atomic writes (`write_atomic`): a file is written into a temporary sibling (``TMP_PREFIX``)
  and renamed into place, so a reader sees the old file or the new one, never a part.

It imports nothing of the suite: the run store (``imprf_utils.training.store``), the claims
records (``imprf_utils.report.records``), the figures (``imprf_utils.report.figure_files``) and
the notebooks' analyses all use it.
"""

from __future__ import annotations

import os
import platform
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent
"""The repository's root: the folder that holds ``imprf_utils/``."""
FIGURES = REPOSITORY / "figures"
"""The tracked figures: only ``make notebooks`` writes here (IMPRF_FIGURES=figures), with the default preset."""
RESULTS = REPOSITORY / "results"
"""The committed results of presets other than the default: results/<preset>/ (results/README.md)."""
DEFAULT_RUN_STORE = Path(os.environ.get("IMPRF_RUN_STORE", REPOSITORY / "runs"))
"""The run store of runs that name none: $IMPRF_RUN_STORE, else runs/ in the repository."""
TMP_PREFIX = ".tmp-"
"""The start of a temporary's name (`write_atomic`, the run store's levels): never a finished file."""


def figures_root(
    figures_dir: str | Path | None = None, preset: str | Path = "default", *, relative_to: str | Path | None = None
) -> Path:
    """Where a run's ``<dataset>/`` figure folders go.

    ``figures_dir`` when given (a notebook parameter: relative to the working directory, the
    notebook's folder under papermill, or to ``relative_to`` when a caller elsewhere asks, e.g.
    the notebooks' folder); else ``$IMPRF_FIGURES``; else ``build/<preset>/figures`` in the
    repository, so that only ``make notebooks`` rewrites the tracked ``figures/``. ``preset``
    may be a YAML file's path: its stem names the folder.
    """
    if figures_dir is not None:
        return Path(figures_dir) if relative_to is None else (Path(relative_to) / figures_dir).resolve()
    if os.environ.get("IMPRF_FIGURES"):
        return Path(os.environ["IMPRF_FIGURES"])
    return REPOSITORY / "build" / Path(str(preset)).stem / "figures"


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what `platform.processor` says, else "unknown CPU"."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def git_commit() -> str | None:
    """The repository's git commit, or None outside a git checkout (or without git)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def provenance(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters, package versions and git commit, stored beside every figure."""
    import matplotlib  # the versions of what draws; imported here, so that a claims record does not load them
    import numpy as np
    import seaborn as sns
    import torch

    return {
        "parameters": dict(params),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "matplotlib": matplotlib.__version__,
            "seaborn": sns.__version__,
        },
        "git_commit": git_commit(),
    }


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary sibling renamed into place.

    The temporary is ``<TMP_PREFIX><name>-<random hex>`` in the same folder (a rename within one
    filesystem is atomic); it is removed if the write fails.
    """
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{uuid.uuid4().hex}")
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
