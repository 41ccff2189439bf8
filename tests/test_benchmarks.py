"""benchmarks/run.py runs and prints one valid JSON record per line (no timing is asserted)."""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_prints_json_records():
    result = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--only", "clone_images_per_second", "--device", "cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in records] == ["clone_images_per_second"]
    for r in records:
        assert isinstance(r["value"], float) and math.isfinite(r["value"]) and r["value"] > 0
        assert isinstance(r["unit"], str) and r["unit"]
        assert {"device", "threads", "torch", "cpu"} <= set(r["detail"])
        assert r["detail"]["device"] == "cpu" and r["detail"]["mode"] == "quick"


def test_paper_round_projects_the_paper_preset():
    """Plumbing (a narrow network, seconds): the cases, their stacking and the projection's arithmetic."""
    result = subprocess.run(
        [sys.executable, "benchmarks/paper_round.py", "--images", "3000", "--test-images", "500", "--hidden", "32",
         "--batch", "100", "--steps", "1", "--warmup", "1", "--precision", "fp32", "--device", "cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(records) == {"paper_round_imp_samples_per_s", "paper_round_oneshot_random_samples_per_s",
                            "paper_preset_projected_hours"}
    imp, other = records["paper_round_imp_samples_per_s"], records["paper_round_oneshot_random_samples_per_s"]
    assert imp["detail"]["replicas"] == 3 and other["detail"]["replicas"] == 20
    assert imp["detail"]["widths"] == [3072, 32, 32, 32, 1000] and imp["detail"]["test_images"] == 500
    assert imp["detail"]["batch"] == 100
    projected = records["paper_preset_projected_hours"]
    assert projected["detail"]["trainings"] == 132
    # the projection is the replica-steps at each measured rate
    expected = (projected["detail"]["replica_steps_imp"] * imp["detail"]["s_per_step"] / 3
                + projected["detail"]["replica_steps_oneshot_random"] * other["detail"]["s_per_step"] / 20) / 3600
    assert math.isclose(projected["value"], expected, rel_tol=0.01)


def test_gemm_reference_of_k_networks_does_each_networks_products_on_its_own_tensors(monkeypatch):
    """gemm_call(networks=K): per step, every network's forward, weight-gradient and input-gradient
    products (none for the data), each network on tensors of its own."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import run

    import torch

    calls = []
    mm = torch.mm
    monkeypatch.setattr(torch, "mm", lambda a, b, out: calls.append((a, b, out)) or mm(a, b, out=out))
    widths, networks, steps = (6, 5, 4, 3), 3, 2
    run.gemm_call(widths, 7, steps, torch.device("cpu"), networks=networks)()
    per_network = 2 * (len(widths) - 1) + (len(widths) - 2)  # Y and dW every layer, dX all but the first
    assert len(calls) == steps * networks * per_network
    first_step = calls[: networks * per_network]
    outputs = {out.data_ptr() for _, _, out in first_step}
    assert len(outputs) == networks * per_network  # no two products write one tensor
    assert {out.data_ptr() for _, _, out in calls[networks * per_network :]} == outputs  # the next step reuses them


def test_batched_gemm_reference_does_a_stacked_steps_products_as_one_bmm_each(monkeypatch):
    """batched_gemm_call: per step, the forward, weight-gradient and input-gradient products (none for the
    data) of K stacked networks, each as one torch.bmm over (K, ·, ·), and the products equal each network's."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import run

    import torch

    calls = []
    bmm = torch.bmm
    monkeypatch.setattr(torch, "bmm", lambda a, b, out: calls.append((a, b, out)) or bmm(a, b, out=out))
    widths, replicas, steps, batch = (6, 5, 4, 3), 4, 2, 7
    run.batched_gemm_call(widths, batch, steps, replicas, torch.device("cpu"))()
    per_step = 2 * (len(widths) - 1) + (len(widths) - 2)
    assert len(calls) == steps * per_step
    assert all(a.shape[0] == b.shape[0] == out.shape[0] == replicas for a, b, out in calls)
    a, b, out = calls[0]  # the first layer's forward, Y = X Wᵀ
    assert out.shape == (replicas, batch, widths[1])
    assert torch.allclose(out[2], a[2] @ b[2])


def test_the_wide_batchnorm_roofline_is_one_of_the_benchmarks():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import run

    assert "train_roofline_fraction_wide_bn_stacked" in run.BENCHMARKS
    assert run.WIDE_FCN[1:-1] == (1024, 1024, 1024) and run.WIDE_SEEDS == 5
