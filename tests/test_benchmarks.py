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
