"""Which machine settings change which results: the sources table of docs/determinism.md.

Each setting runs a fresh Python process (BLAS libraries read their settings when they
load) that computes a fingerprint of each numeric path the notebooks take:

- ``openblas``: FastICA of notebook 01 (scikit-learn, numpy's OpenBLAS);
- ``mkl_gemm``: float32 matrix products (PyTorch's MKL, the training step's matmuls);
- ``aten_math``: vectorised elementwise maths and reductions (PyTorch's ATen kernels: the
  loss, kurtosis, cavity moments);
- ``clone``: the Gaussian clone of the default data (notebook 00 on);
- ``training``: a small IMP run (dense, 2 rounds, oneshot and random), the path of 02-06.

A fingerprint is a SHA-256 of the result's bytes, so "same" means bit for bit.

    python tools/numerics_sources.py             # the machine as it is, then each emulated setting
    python tools/numerics_sources.py --markdown  # the table for docs/determinism.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Each emulated machine: the variables a machine (or its administrator) sets, and what they emulate.
SETTINGS: dict[str, dict[str, str]] = {
    "as is": {},
    "OPENBLAS_CORETYPE=Zen": {"OPENBLAS_CORETYPE": "Zen"},
    "OPENBLAS_CORETYPE=SkylakeX": {"OPENBLAS_CORETYPE": "SkylakeX"},
    "OPENBLAS_CORETYPE=Sandybridge": {"OPENBLAS_CORETYPE": "Sandybridge"},
    "OPENBLAS_CORETYPE=Prescott": {"OPENBLAS_CORETYPE": "Prescott"},
    "ATEN_CPU_CAPABILITY=default": {"ATEN_CPU_CAPABILITY": "default"},
    "MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"},
    "MKL_CBWR=AVX": {"MKL_CBWR": "AVX"},
    "1 thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    "4 threads": {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "4"},
}
PATHS = ("openblas", "mkl_gemm", "aten_math", "clone", "training")
NOTEBOOKS = {"openblas": "01", "mkl_gemm": "00-06", "aten_math": "00-06", "clone": "00-06", "training": "02-06"}


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(a.tobytes() if hasattr(a, "tobytes") else a.contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def fingerprints() -> dict[str, str]:
    """Run every numeric path once in this process; return its fingerprints."""
    import numpy as np
    import torch

    from imprf_utils.data.clone import gaussian_clone
    from imprf_utils.data import load_dataset
    from imprf_utils.training.config import ExperimentConfig
    from imprf_utils.training.runner import run_experiment
    from imprf_utils.notebooks.features import ica_components

    out = {}
    data = load_dataset("skewed_texture", seed=0)
    x = data.x.reshape(len(data), -1)[:2000]
    filters, _, _ = ica_components(x, 16, seed=0, max_iter=50)
    out["openblas"] = digest(filters.numpy())
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1000, 257, generator=g), torch.randn(257, 300, generator=g)
    out["mkl_gemm"] = digest(a @ b, torch.addmm(b[0], a, b), torch.bmm(a[None], b[None]))
    h = torch.randn(5000, 300, generator=g)
    out["aten_math"] = digest(
        torch.tanh(h), torch.exp(h), torch.log_softmax(h, 1), h.sum(0), ((h - h.mean(0)) ** 4).mean(0)
    )
    out["clone"] = digest(gaussian_clone(data, seed=0).x)
    config = ExperimentConfig(
        dataset="skewed_texture", dataset_options={"n": 1000, "size": 8}, hidden=(64, 64), batch_size=64,
        steps=200, rewind_step=20, eval_every=100, rounds=2, compare_levels=(2,),
    )
    with tempfile.TemporaryDirectory() as store:
        exp = run_experiment(config, run_store=store, device="cpu")
        out["training"] = digest(*(exp.model(level).weights[0][0].detach() for level in ("level_2", "oneshot_2", "random_2")))
    return out


def run(setting: dict[str, str], pinned: bool) -> dict[str, str]:
    """Fingerprints in a fresh process with ``setting`` in its environment (then pinned, if asked)."""
    from imprf_utils.numerics import pinned_environ

    env = {**os.environ, **setting, "IMPRF_PROGRESS": "0"}
    if pinned:
        env = pinned_environ(env)
    child = subprocess.run(
        [sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, cwd=ROOT
    )
    if child.returncode != 0:
        return {p: "crash" for p in PATHS}
    return json.loads(child.stdout.strip().splitlines()[-1])


def table(markdown: bool) -> str:
    rows = []
    reference = {pinned: run({}, pinned) for pinned in (False, True)}
    for name, setting in SETTINGS.items():
        cells = []
        for pinned in (False, True):
            prints = run(setting, pinned)
            changed = [p for p in PATHS if prints[p] != reference[pinned][p]]
            if any(v == "crash" for v in prints.values()):
                cells.append("crashes")
            else:
                cells.append(", ".join(f"{p} ({NOTEBOOKS[p]})" for p in changed) or "nothing")
        rows.append((name, *cells))
    head = ("emulated setting", "changes, as the machine is", "changes, with the suite's pinned numerics")
    if not markdown:
        return "\n".join(" | ".join(r) for r in (head, *rows))
    lines = ["| " + " | ".join(head) + " |", "| --- | --- | --- |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(fingerprints()))
        return 0
    print(table(args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
