"""The run store: one directory per resolved experiment config, one sub-directory per level.

Layout (open_lth's vocabulary)::

    <root>/<dataset>/<hash>/config.json     resolved config, defaults included, + schema_version
                           /level_0/         dense training: state.pt, rewind.pt, masks.pt, metrics.json
                           /level_3/         after 3 IMP rounds
                           /oneshot_3/       oneshot magnitude pruning to level 3's sparsity
                           /random_3/        random masks of level 3's per-layer density

A level is written into a temporary sibling directory and renamed into place, so a level
directory that exists is complete; a run interrupted mid-level leaves only a temporary
directory, removed when the run resumes. Tensors are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from imprf_utils.errors import RunStoreError
from imprf_utils.output import TMP_PREFIX, write_atomic

SCHEMA_VERSION = 1


def config_hash(config: dict[str, Any]) -> str:
    """First 12 hex digits of the SHA-256 of the config's canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Run:
    """The directory of one experiment; created (with its config.json) on first use."""

    def __init__(self, root: str | os.PathLike, name: str, config: dict[str, Any]):
        self.config = {**config, "schema_version": SCHEMA_VERSION}
        self.path = Path(root) / name / config_hash(self.config)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f"{TMP_PREFIX}probe-{uuid.uuid4().hex}"
            probe.touch()
            probe.unlink()
        except OSError as err:
            raise RunStoreError(
                f"run store {root} is not writable ({err.strerror}): pass a writable run_store "
                "(notebook parameter run_store, or IMPRF_RUN_STORE)"
            ) from err
        config_file = self.path / "config.json"
        if config_file.exists():
            stored = json.loads(config_file.read_text())
            if stored.get("schema_version") != SCHEMA_VERSION:
                raise RunStoreError(
                    f"{self.path} was written by schema version {stored.get('schema_version')}, this "
                    f"imprf_utils writes version {SCHEMA_VERSION}: delete that directory or use another run_store"
                )
        else:
            write_atomic(config_file, json.dumps(self.config, indent=2, sort_keys=True).encode())

    def has(self, level: str) -> bool:
        return (self.path / level).is_dir()

    def levels(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.is_dir() and not p.name.startswith(TMP_PREFIX))

    def save(self, level: str, tensors: dict[str, dict[str, torch.Tensor]], metrics: dict[str, Any]) -> None:
        """Write a level atomically: ``tensors`` maps file stems to state dicts; plus metrics.json."""
        tmp = self.path / f"{TMP_PREFIX}{level}-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            for stem, state in tensors.items():
                torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, tmp / f"{stem}.pt")
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1))
            os.rename(tmp, self.path / level)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not self.has(level):  # another process may have finished the same level first
                raise

    def load(self, level: str, stem: str) -> dict[str, torch.Tensor]:
        return torch.load(self.path / level / f"{stem}.pt", weights_only=True, map_location="cpu")

    def metrics(self, level: str) -> dict[str, Any]:
        return json.loads((self.path / level / "metrics.json").read_text())

    def clean_partial(self) -> None:
        """Remove temporary directories left by an interrupted level."""
        for p in self.path.iterdir():
            if p.name.startswith(TMP_PREFIX):
                shutil.rmtree(p, ignore_errors=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock on this run: a second process on the same config waits, then reuses."""
        with open(self.path / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
