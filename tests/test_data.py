"""Tests of the registry imprf_utils.data: load_dataset's names, options, splits and re-exports."""

import pytest

import imprf_utils.data
from imprf_utils.data import DATASETS, load_dataset
from imprf_utils.errors import ConfigError


def test_load_dataset_rejects_unknown_names_options_and_splits():
    assert DATASETS == ("nlgp", "skewed_texture", "natural", "photos", "imagenet32", "cifar10")
    with pytest.raises(ConfigError, match="nlgp, skewed_texture, natural, photos, imagenet32, cifar10"):
        load_dataset("mnist")
    with pytest.raises(ConfigError, match="valid options: n, xi, gain, size, periodic"):
        load_dataset("nlgp", sigma=1.0)
    with pytest.raises(ConfigError, match="valid options: batches, limit"):
        load_dataset("cifar10", n=10)
    with pytest.raises(ConfigError, match="train, test"):
        load_dataset("nlgp", split="val")


def test_the_registry_reexports_what_notebooks_and_modules_import():
    import imprf_utils.data.clone
    import imprf_utils.data.dataset
    from imprf_utils.data import DATASETS, Dataset, check_options, gaussian_clone, load_dataset  # noqa: F401

    assert imprf_utils.data.Dataset is imprf_utils.data.dataset.Dataset
    assert imprf_utils.data.gaussian_clone is imprf_utils.data.clone.gaussian_clone
    assert set(imprf_utils.data.__all__) <= set(dir(imprf_utils.data))
    check_options("photos", {"n": 10, "size": 32, "grayscale": False})
    with pytest.raises(ConfigError, match="valid options: n, size, grayscale, amplitude"):
        check_options("photos", {"colour": True})
    with pytest.raises(ConfigError, match="photos must name two or more"):
        check_options("photos", {"photos": ("china",)})
