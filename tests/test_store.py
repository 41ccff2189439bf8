import json

import pytest
import torch

from imprf_utils.errors import RunStoreError
from imprf_utils.store import SCHEMA_VERSION, TMP_PREFIX, Run, config_hash


def test_config_hash_is_canonical_and_sensitive():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_run_directory_holds_the_resolved_config(tmp_path):
    run = Run(tmp_path, "toy", {"lr": 0.1, "seed": 3})
    stored = json.loads((run.path / "config.json").read_text())
    assert stored == {"lr": 0.1, "seed": 3, "schema_version": SCHEMA_VERSION}
    assert run.path.parent.name == "toy" and run.path.name == config_hash(stored)
    assert Run(tmp_path, "toy", {"seed": 3, "lr": 0.1}).path == run.path


def test_level_roundtrip_with_weights_only_loading(tmp_path):
    run = Run(tmp_path, "toy", {})
    state = {"weight": torch.randn(2, 3), "mask": torch.rand(2, 3) > 0.5}
    run.save("level_1", {"state": state}, {"accuracy": 0.5})
    assert run.has("level_1") and run.levels() == ["level_1"]
    loaded = run.load("level_1", "state")
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert run.metrics("level_1") == {"accuracy": 0.5}


def test_a_failed_save_leaves_no_level(tmp_path, monkeypatch):
    run = Run(tmp_path, "toy", {})
    calls = []

    def failing_save(obj, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        torch.serialization.save(obj, path)

    monkeypatch.setattr("imprf_utils.store.torch.save", failing_save)
    with pytest.raises(OSError):
        run.save("level_1", {"state": {"w": torch.ones(1)}, "masks": {"m": torch.ones(1)}}, {})
    assert not run.has("level_1")
    assert not [p for p in run.path.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_partial_directories_are_cleaned(tmp_path):
    run = Run(tmp_path, "toy", {})
    (run.path / f"{TMP_PREFIX}level_2-abc").mkdir()
    run.clean_partial()
    assert run.levels() == []
    assert not any(p.name.startswith(TMP_PREFIX) for p in run.path.iterdir())


def test_other_schema_version_is_refused(tmp_path):
    run = Run(tmp_path, "toy", {"lr": 0.1})
    config = json.loads((run.path / "config.json").read_text())
    config["schema_version"] = SCHEMA_VERSION - 1
    (run.path / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunStoreError, match="schema version"):
        Run(tmp_path, "toy", {"lr": 0.1})


def test_unwritable_store_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RunStoreError, match="not writable"):
        Run(blocker / "runs", "toy", {})
