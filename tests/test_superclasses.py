"""Tests of imprf_utils.data.superclasses and of the data steps of ExperimentConfig (fraction, superclasses)."""

import pytest
import torch

from imprf_utils.data import clone_splits, load_dataset
from imprf_utils.data.superclasses import apply_superclasses, read_mapping, superclass_mapping
from imprf_utils.errors import ConfigError, DataFormatError
from imprf_utils.training.config import ExperimentConfig
from imprf_utils.training.experiment import load_data

SMALL = dict(dataset="skewed_texture", dataset_options={"n": 400, "size": 8})


def test_modulo_groups_labels_by_remainder():
    mapping, names = superclass_mapping("mod10", "imagenet32", 1000)
    assert mapping.tolist() == [c % 10 for c in range(1000)] and len(names) == 10


def test_builtin_grouping_of_the_embedded_data_keeps_the_texture_sign():
    ds = load_dataset("skewed_texture", n=400, size=8)
    grouped = apply_superclasses(ds, *superclass_mapping("semantic", "skewed_texture", 4))
    assert grouped.num_classes == 2 and torch.equal(grouped.y, ds.y // 2)
    assert torch.equal(grouped.x, ds.x)


def test_pellegrini_biroli_text_format(tmp_path):
    path = tmp_path / "ImageNet_10cl.txt"
    lines = [f"n{c:08d} {c} {c // 100} class name {c}" for c in range(1000)]
    path.write_text("\n".join(lines) + "\n")
    mapping, names = read_mapping(path, 1000)
    assert mapping.tolist() == [c // 100 for c in range(1000)]
    assert names[0] == "class name 0, class name 1, class name 2, ..."


def test_two_column_csv_with_header(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_text("label,superclass\n0,1\n1,0\n2,1\n3,0\n")
    mapping, names = read_mapping(path, 4)
    assert mapping.tolist() == [1, 0, 1, 0] and len(names) == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("0,0\n1,1\n2,0\n", "no superclass"),
        ("0,0\n1,1\n2,0\n3,1\n3,0\n", "mapped twice"),
        ("0,0\n1,2\n2,0\n3,2\n", "without gaps"),
        ("0,0\n1,1\n2,0\n7,1\n", "outside 0..3"),
        ("0 0 0\n", "expected"),
        ("0,0\nx,1\n", "integers"),
    ],
)
def test_malformed_mapping_files_are_named_with_their_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message):
        read_mapping(path, 4)


@pytest.mark.parametrize(
    "spec, dataset, message",
    [
        ("semantic", "imagenet32", "no built-in grouping"),
        ("mod1", "skewed_texture", "N >= 2"),
        ("groups.txt", "imagenet32", "existing mapping file"),
    ],
)
def test_impossible_groupings_are_refused_when_the_config_is_made(spec, dataset, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(dataset=dataset, superclasses=spec)


def test_more_superclasses_than_classes_is_an_error():
    with pytest.raises(ConfigError, match="only 4 classes"):
        superclass_mapping("mod4", "skewed_texture", 4)


def test_train_fraction_is_a_seeded_subset_and_superclasses_apply_to_both_splits():
    full, test = load_data(ExperimentConfig(**SMALL))
    part, part_test = load_data(ExperimentConfig(**SMALL, train_fraction=0.3, superclasses="mod2"))
    assert len(part) == 120 and torch.equal(part_test.x, test.x)
    rows = [int((full.x.flatten(1) == row).all(1).nonzero()) for row in part.x.flatten(1)]
    assert rows == sorted(rows) and torch.equal(part.y, full.y[rows] % 2)
    assert part.num_classes == part_test.num_classes == 2 and torch.equal(part_test.y, test.y % 2)
    again, _ = load_data(ExperimentConfig(**SMALL, train_fraction=0.3, data_seed=1))
    assert not torch.equal(again.x, part.x)
    with pytest.raises(ConfigError, match="train_fraction"):
        ExperimentConfig(**SMALL, train_fraction=0.0)


def test_an_experiments_clone_is_clone_splits_of_its_data():
    """Both clone splits are `data.clone_splits` of the experiment's data splits (test_limit applied first)."""
    train, test = load_data(ExperimentConfig(**SMALL, clone=True, test_limit=20))
    data_train, data_test = load_data(ExperimentConfig(**SMALL, test_limit=20))
    assert torch.equal(test.y, data_test.y) and len(test) == 20
    expected = clone_splits("skewed_texture", data_train, data_test, seed=0, **SMALL["dataset_options"])
    assert torch.equal(train.x, expected[0].x) and torch.equal(test.x, expected[1].x)
