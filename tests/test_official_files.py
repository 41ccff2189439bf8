"""Tests of imprf_utils.official_files met by a run: a missing data_dir leaves no level behind.

The readers themselves (missing folders and files, truncated pickles and npz files, wrong keys,
shapes, dtypes and labels, crafted pickles) are tested in test_data.py.
"""

import pytest

from imprf_utils.experiment import run_experiment

from conftest import TINY, changed, leftovers


def test_missing_data_dir_in_a_run_leaves_no_level(tmp_path):
    config = changed(TINY, dataset="cifar10", dataset_options={}, data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="no folder .*nowhere.*cifar-10-python.tar.gz"):
        run_experiment(config, run_store=tmp_path / "runs", device="cpu")
    assert leftovers(tmp_path / "runs") == []
