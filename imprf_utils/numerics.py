"""Pinned CPU numerics: the same bits on any x86-64 machine with AVX2.

Which kernels a BLAS library or PyTorch runs depends on the processor it finds: OpenBLAS
(numpy, SciPy, scikit-learn's FastICA) picks its kernels by CPU model, MKL (PyTorch's
matmuls) and oneDNN by instruction set and vendor, ATen's vectorised maths by instruction
set, and every parallel reduction by the number of threads. Each choice changes the last
bits of a result, and FastICA, the clone and ten rounds of IMP amplify them into other
masks. ``PINNED`` fixes every one of those choices to a portable one; the project's
execution paths (``make reproduce``, ``make test``, ``make notebooks``, ``make lab``, and
``python -m imprf_utils.report.reproduce``'s kernels) run with it. docs/determinism.md lists what
each variable changes (measured by tools/numerics_sources.py) and what stays different
(GPUs, Arm, other BLAS builds).

    python -m imprf_utils.numerics -- COMMAND ARGS...   # run COMMAND with the pinned numerics
    python -m imprf_utils.numerics                     # show this process's settings
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

THREADS = "2"
PINNED: dict[str, str] = {
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS's AVX2 kernels, whatever CPU model it finds
    "MKL_CBWR": "AVX2",  # MKL's conditional numerical reproducibility: its AVX2 code path on any vendor
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own vectorised kernels at AVX2 (not AVX-512)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (bf16 matmuls on the CPU) at most AVX2
    "OMP_NUM_THREADS": THREADS,  # PyTorch's intra-op threads: reductions split by thread count
    "MKL_NUM_THREADS": THREADS,
    "OPENBLAS_NUM_THREADS": THREADS,
}


def pinned_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) with the pinned numerics set."""
    return {**(os.environ if environ is None else environ), **PINNED}


def unpinned(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The pinned variables that ``environ`` lacks or sets otherwise: name -> its value ('' if unset)."""
    environ = os.environ if environ is None else environ
    return {k: environ.get(k, "") for k, v in PINNED.items() if environ.get(k) != v}


def pin_this_process() -> None:
    """Set the pinned variables for the processes this one starts (notebook kernels).

    Libraries already loaded in this process keep what they chose when they loaded.
    """
    os.environ.update(PINNED)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        missing = unpinned()
        for name, value in PINNED.items():
            print(f"{name}={os.environ.get(name, '')}" + ("" if name not in missing else f"   (pinned: {value})"))
        print("pinned" if not missing else "not pinned: run commands as `python -m imprf_utils.numerics -- COMMAND`")
        return 0
    os.execvpe(argv[0], argv, pinned_environ())


if __name__ == "__main__":
    sys.exit(main())
