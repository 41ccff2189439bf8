"""benchmarks/gpu_check.sh on the CPU (DEVICE=cpu): every step's plumbing with tiny sizes, the records
it writes, the budget cutting steps short, and its refusal of DEVICE=cuda without a GPU.

Numbers are not checked (the CPU mode's sizes measure nothing); what each step promises is."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def gpu_check(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run the script with results and scratch under tmp_path; its output and the records it wrote."""
    environ = {k: v for k, v in os.environ.items() if k != "OUT"}
    environ |= {"PYTHON": sys.executable, "RESULTS_DIR": str(tmp_path / "results"), "SCRATCH": str(tmp_path / "scratch"),
                **env}
    result = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600)  # beyond the 450 s budget: a slow machine is not a hang
    files = list((tmp_path / "results").glob("gpu_check_*.jsonl"))
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    return result, records


@pytest.mark.notebooks
def test_cpu_mode_runs_every_step_and_records_each_figure_with_its_step_and_device(tmp_path):
    result, records = gpu_check(tmp_path, DEVICE="cpu", NOTEBOOKS="notebooks/00_data_and_gaussian_clone.ipynb")
    assert result.returncode == 0, result.stdout + result.stderr
    steps = {r["step"]: r["detail"]["status"] for r in records if r["name"] == "gpu_check_step"}
    assert steps == {"cuda_tests": "ok", "run": "ok", "paper_round": "ok", "notebook_00": "ok"}
    figures = {r["name"]: r for r in records if r["name"] != "gpu_check_step"}
    assert set(figures) == {"clone_images_per_second", "paper_round_imp_samples_per_s",
                            "paper_round_oneshot_random_samples_per_s", "paper_preset_projected_hours", "notebook_00_seconds"}
    assert figures["notebook_00_seconds"]["detail"]["preset"] == "smoke"
    assert all(r["device"].startswith("cpu (") and r["commit"] and r["value"] >= 0 for r in records)
    log = tmp_path / "scratch" / "logs" / "cuda_tests.log"
    assert "5 skipped in" in log.read_text()  # collected (4 cases of the captured step, the clone), skipped without CUDA
    summary = result.stdout.split("gpu_check summary:")[1]
    assert all(step in summary for step in steps) and "notebook_00_seconds" in summary


def test_the_budget_stops_a_step_and_skips_the_rest(tmp_path):
    result, records = gpu_check(tmp_path, DEVICE="cpu", BUDGET_S="2", MIN_STEP_S="1",
                                NOTEBOOKS="notebooks/00_data_and_gaussian_clone.ipynb")
    assert result.returncode == 1
    status = {r["step"]: r["detail"]["status"] for r in records if r["name"] == "gpu_check_step"}
    assert status["cuda_tests"].startswith("timeout after")
    assert all(status[step].startswith("skipped") for step in ("run", "paper_round", "notebook_00"))


def test_cuda_mode_without_a_gpu_is_refused_before_any_step(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result, records = gpu_check(tmp_path, DEVICE="cuda")
    assert result.returncode == 2 and "sees no CUDA device" in result.stderr
    assert records == [] and not (tmp_path / "results").exists()
