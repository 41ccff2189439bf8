"""Tests of imprf_utils.data.dataset: the Dataset type's methods and its checks of the data it holds."""

import pytest
import torch

from imprf_utils.data import Dataset, load_dataset
from imprf_utils.errors import ConfigError, DataFormatError
from imprf_utils.training.runner import run_experiment

from conftest import TINY, changed, leftovers


def images(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 1, 4, 4, generator=torch.Generator().manual_seed(0)), torch.arange(n) % 2


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_or_inf_in_the_images_is_refused(value):
    x, y = images()
    x[3, 0, 1, 2] = value
    with pytest.raises(DataFormatError, match=r"1 of 8 images hold NaN or Inf — drop or repair them"):
        Dataset(x, y, 2, "mine")


def test_generated_data_that_overflow_are_refused_before_a_run_starts(tmp_path):
    # exp(sigma z) overflows float32 at sigma = 20: the texture would be NaN, silently
    with pytest.raises(DataFormatError, match="NaN or Inf.*lower the option that overflowed.*sigma"):
        load_dataset("skewed_texture", n=40, size=8, sigma=20.0)
    config = changed(TINY, dataset_options={"n": 40, "size": 8, "sigma": 20.0})
    with pytest.raises(DataFormatError, match="NaN or Inf"):
        run_experiment(config, run_store=tmp_path, device="cpu")
    assert leftovers(tmp_path) == []


def test_non_finite_or_misshapen_mean_is_refused():
    x = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    y = torch.tensor([0, 1, 0, 1])
    with pytest.raises(DataFormatError, match="mean must be 4 finite numbers.*recompute it"):
        Dataset(x, y, 2, "mine", mean=torch.tensor([0.0, float("nan"), 0.0, 0.0]))
    with pytest.raises(DataFormatError, match=r"mean must be 4 finite numbers.*\(3,\)"):
        Dataset(x, y, 2, "mine", mean=torch.zeros(3))


def test_fewer_than_two_classes_is_refused():
    x, _ = images()
    with pytest.raises(DataFormatError, match="num_classes is 1; classification needs two or more"):
        Dataset(x, torch.zeros(8, dtype=torch.int64), 1, "mine")
    # generated data: caught when the config is made, before any run directory exists
    with pytest.raises(ConfigError, match="nlgp needs two or more classes: give xi and/or gain as tuples"):
        changed(TINY, dataset="nlgp", dataset_options={"xi": 2.0, "gain": 10.0})
    with pytest.raises(ConfigError, match="photos must name two or more distinct photos of"):
        changed(TINY, dataset="natural", dataset_options={"photos": ("china",)})


@pytest.mark.parametrize("labels, span", [([0, 1, 2, 3, 0, 1, 2, 4], "0..4"), ([-1, 0, 1, 2, 3, 0, 1, 2], "-1..3")])
def test_labels_out_of_range_in_memory_are_refused(labels, span):
    x, _ = images()
    with pytest.raises(DataFormatError, match=f"labels span {span}, expected 0..3 — labels must be 0-based"):
        Dataset(x, torch.tensor(labels), 4, "mine")


def test_images_of_the_wrong_dtype_or_shape_in_memory_are_refused():
    x, y = images()
    with pytest.raises(DataFormatError, match=r"x is torch.float64.*convert with x.float\(\)"):
        Dataset(x.double(), y, 2, "mine")
    with pytest.raises(DataFormatError, match=r"x must be \(N, C, H, W\).*got x \(8, 16\)"):
        Dataset(x.reshape(8, 16), y, 2, "mine")
    with pytest.raises(DataFormatError, match=r"y \(N,\) int64.*convert labels with y.long\(\)"):
        Dataset(x, y.float(), 2, "mine")


def test_dataset_methods():
    ds = load_dataset("skewed_texture", n=100)
    sub = ds.subset(ds.y == 1)
    assert len(sub) == 25 and (sub.y == 1).all()
    assert sub.class_names == ds.class_names and sub.periodic
    assert torch.equal(ds.subset(slice(0, 10)).x, ds.x[:10])
    moved = ds.to("cpu")
    assert moved.x.device.type == "cpu" and torch.equal(moved.x, ds.x)
    with pytest.raises(ValueError, match="int64"):
        Dataset(ds.x, ds.y.int(), 4, "bad")
