"""A small IMP experiment end to end: stages, sparsities, zeros, resumption, determinism."""

import dataclasses
import json
import shutil

import pandas as pd
import pytest
import torch

from imprf_utils.data import CLONE_VERSION, RECIPE_VERSIONS, gaussian_clone
from imprf_utils.errors import ConfigError
from imprf_utils.notebooks.levels import level_summary
from conftest import CONFIG, TINY, assert_same_results, changed
from imprf_utils.training.config import ExperimentConfig
from imprf_utils.training.experiment import Experiment, Level, load_data
from imprf_utils.training.presets import experiment_config, load_preset
from imprf_utils.training.runner import run_experiment, run_experiments, stacked_parts
from imprf_utils.training.store import SCHEMA_VERSION, config_hash



def test_every_stage_is_stored(experiment):
    expected = [("imp", k) for k in range(4)] + [("oneshot", 1), ("oneshot", 3), ("random", 1), ("random", 3)]
    assert experiment.stored_levels() == expected and not experiment.missing_levels()
    assert experiment.run.levels() == sorted(["level_0", "level_1", "level_2", "level_3", "oneshot_1", "oneshot_3", "random_1", "random_3"])


def test_a_level_names_its_store_directory():
    assert [Level(*level).directory for level in (("imp", 0), ("oneshot", 7), ("random", 10))] == ["level_0", "oneshot_7", "random_10"]
    with pytest.raises(ValueError, match="method must be one of imp, oneshot, random"):
        Level("magnitude", 3).directory


def test_each_round_prunes_thirty_percent_of_each_hidden_layer(experiment):
    for k in range(4):
        masks = experiment.masks(("imp", k))
        assert len(masks) == 2  # hidden layers only: the output layer is never pruned
        for m in masks:
            remaining = m.numel()
            for _ in range(k):
                remaining -= round(0.3 * remaining)
            assert int(m.sum()) == remaining
    for method in ("oneshot", "random"):
        for k in (1, 3):
            counts = [int(m.sum()) for m in experiment.masks((method, k))]
            assert counts == [int(m.sum()) for m in experiment.masks(("imp", k))]


def test_pruned_weights_are_exactly_zero_in_every_saved_state(experiment):
    for level in experiment.stored_levels():
        state = experiment.load(level, "state")
        for layer, mask in enumerate(experiment.masks(level)):
            assert bool((state[f"weights.{layer}"][0][~mask] == 0).all()), level


def test_imp_masks_are_nested_and_removal_round_agrees(experiment):
    rounds = experiment.removal_round(0)
    for k in range(1, 4):
        mask = experiment.masks(("imp", k))[0]
        assert torch.equal(mask, rounds > k)


def test_oneshot_at_one_round_is_imp_round_one(experiment):
    """Same masks, same rewind state, same batches: the batched replica reproduces the IMP run."""
    assert all(torch.equal(a, b) for a, b in zip(experiment.masks(("oneshot", 1)), experiment.masks(("imp", 1))))
    assert experiment.metrics(("oneshot", 1))["test_accuracy"] == pytest.approx(
        experiment.metrics(("imp", 1))["test_accuracy"], abs=1e-6
    )


def test_rerun_skips_and_interrupted_run_resumes_identically(experiment):
    before = {lvl: experiment.metrics(lvl) for lvl in experiment.stored_levels()}
    masks_before = experiment.masks(("imp", 3))
    run_experiment(CONFIG, run_store=experiment.run.path.parent.parent, device="cpu")  # nothing to do
    for level in (("imp", 2), ("imp", 3), ("oneshot", 3), ("random", 3)):
        shutil.rmtree(experiment.run.path / Level(*level).directory)
    (experiment.run.path / ".tmp-level_2-interrupted").mkdir()
    again = run_experiment(CONFIG, run_store=experiment.run.path.parent.parent, device="cpu")
    assert {lvl: again.metrics(lvl) for lvl in again.stored_levels()} == before
    assert all(torch.equal(a, b) for a, b in zip(again.masks(("imp", 3)), masks_before))


def test_seeds_trained_together_match_one_at_a_time(experiment, tmp_path):
    """Seeds 0 and 1 as stacked replicas: seed 0 reproduces the single run; seed 1 differs from it."""
    seed1 = ExperimentConfig(**{**CONFIG.as_dict(), "seed": 1})
    together = run_experiments([CONFIG, seed1], run_store=tmp_path, device="cpu")
    alone = run_experiment(seed1, run_store=tmp_path / "alone", device="cpu")
    for level in experiment.stored_levels():
        for exp, single in ((together[0], experiment), (together[1], alone)):
            assert all(torch.equal(a, b) for a, b in zip(exp.masks(level), single.masks(level))), level
            assert exp.metrics(level)["test_accuracy"] == pytest.approx(single.metrics(level)["test_accuracy"], abs=2e-3)
    assert not torch.equal(together[1].masks(("random", 1))[0], experiment.masks(("random", 1))[0])
    assert not torch.equal(together[1].masks(("imp", 1))[0], experiment.masks(("imp", 1))[0])


def assert_stacked_as_alone(configs: list[ExperimentConfig], tmp_path) -> None:
    """``run_experiments(configs)`` stores, run by run, exactly what each config trained alone stores."""
    together = run_experiments(configs, run_store=tmp_path / "together", device="cpu")
    for config, stacked in zip(configs, together):
        assert_same_results(stacked, run_experiment(config, run_store=tmp_path / "alone", device="cpu"))


def test_the_data_and_its_clone_train_as_one_stacked_model_bit_for_bit_as_alone(tmp_path):
    """Two seeds on the data and on its clone (oneshot and random at other levels): one stacked model
    (each replica reading its own set), which stores exactly what each (seed, data or clone) trained alone stores."""
    configs = [changed(TINY, seed=seed, clone=clone, compare_levels=(1, 2) if clone else (2,)) for clone in (False, True) for seed in (0, 1)]
    assert_stacked_as_alone(configs, tmp_path)


def test_a_progress_line_names_the_data_and_the_clone_trained_together(tmp_path, monkeypatch):
    log = tmp_path / "progress.log"
    monkeypatch.setenv("IMPRF_PROGRESS_LOG", str(log))
    run_experiments([changed(TINY, clone=clone, rounds=0, compare_levels=()) for clone in (False, True)], run_store=tmp_path, device="cpu")
    assert "skewed_texture (n=400, size=8, hidden=(16, 16), steps=40) and its clone seeds [0]: dense" in log.read_text()


def test_a_progress_line_names_each_dataset_trained_together_once(tmp_path, monkeypatch):
    """Each seed draws its own data, yet a dataset is one name: notebook 06's group (the data, a training
    fraction and the clone, over seeds) is one short line, not a name per seed."""
    log = tmp_path / "progress.log"
    monkeypatch.setenv("IMPRF_PROGRESS_LOG", str(log))
    variants = ({}, {"train_fraction": 0.5}, {"clone": True})
    run_experiments([changed(TINY, seed=seed, rounds=0, compare_levels=(), **v) for v in variants for seed in (0, 1)], run_store=tmp_path, device="cpu")
    data = "skewed_texture (n=400, size=8, hidden=(16, 16), steps=40)"
    fraction = "skewed_texture (n=400, size=8, train_fraction=0.5, hidden=(16, 16), steps=40)"
    assert log.read_text().startswith(f"{data}, {fraction} and its clone seeds [0, 1]: dense: 40 steps, 6 networks"), log.read_text()


def test_dense_only_stops_after_level_0_and_a_full_run_reuses_it(experiment, tmp_path):
    dense = run_experiments([CONFIG], run_store=tmp_path, device="cpu", dense_only=True)[0]
    assert dense.run.levels() == ["level_0"]
    assert dense.run.path.name == experiment.run.path.name  # the same run directory as the full run
    assert dense.metrics(("imp", 0)) == experiment.metrics(("imp", 0))
    full = run_experiment(CONFIG, run_store=tmp_path, device="cpu")
    assert full.run.levels() == experiment.run.levels()
    assert full.metrics(("imp", 0)) == dense.metrics(("imp", 0))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"prune_rate": 1.0}, "prune_rate"),
        ({"prune_rate": 0.0}, "prune_rate"),
        ({"rounds": -1}, "rounds"),
        ({"rewind_step": 60}, "rewind_step"),
        ({"batch_size": 0}, "batch_size"),
        ({"hidden": ()}, "hidden"),
        ({"dataset": "mnist"}, "valid names"),
        ({"compare_levels": (5,)}, "compare_levels"),
    ],
)
def test_impossible_parameters_are_refused_at_construction(change, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(**{**CONFIG.as_dict(), **change})


@pytest.mark.parametrize(
    "change, message",
    [
        ({"dataset_options": {"n": 40, "sigmaa": 1.0}}, "unknown option.*sigmaa.*valid options: n, sigma"),
        ({"seed": -1}, "seeds must be integers >= 0"),
        ({"data_seed": -1}, "seeds must be integers >= 0"),
        ({"test_limit": 0}, "test_limit 0: must be None"),
        ({"steps": 0}, "steps 0: must be > 0"),
        ({"lr": 0.0}, "lr 0.0: must be > 0"),
        ({"eval_every": 0}, "eval_every 0: must be > 0"),
        ({"hidden": (16, 0)}, "widths > 0"),
    ],
)
def test_parameters_are_refused_when_the_config_is_made(change, message):
    """Before any run directory or data exist."""
    with pytest.raises(ConfigError, match=message):
        changed(TINY, **change)


def test_unknown_parameter_is_named():
    with pytest.raises(ConfigError, match="unknown experiment parameters"):
        ExperimentConfig.from_dict({"learning_rate": 0.1})


@pytest.mark.parametrize(
    "change",
    [
        {"dataset": 3},
        {"dataset_options": "{n: 4000}"},
        {"data_dir": 7},
        {"clone": "True"},
        {"data_seed": 1.5},
        {"seed": "["},
        {"hidden": "[64, 64]"},
        {"hidden": (24, "24")},
        {"batchnorm": 1},
        {"lr": "0.1"},
        {"lr": True},
        {"lr": float("nan")},
        {"batch_size": 32.0},
        {"steps": "60"},
        {"rewind_step": None},
        {"eval_every": 2.5},
        {"prune_rate": "0.3"},
        {"prune_rate": float("inf")},
        {"rounds": True},
        {"compare_levels": "[1, 3]"},
        {"test_limit": 10.0},
        {"train_fraction": "1"},
        {"superclasses": 2},
        {"precision": None},
    ],
    ids=lambda change: f"{next(iter(change))}={next(iter(change.values()))!r}",
)
def test_a_value_of_the_wrong_type_is_named_with_what_it_got_and_expects(change):
    (name, value), = change.items()
    with pytest.raises(ConfigError, match=rf"^{name}: got .*\({type(value).__name__}\), expected ") as error:
        ExperimentConfig(**{**CONFIG.as_dict(), **change})
    if isinstance(value, str):  # what papermill's -p gives for a list: say how to pass one
        assert 'pass lists and dicts with -y, e.g. -y "seeds: [0, 1]"' in str(error.value)


def test_every_field_has_its_type_checked():
    """A field added without a type check would let a wrong value through: each one refuses an object()."""
    for f in dataclasses.fields(ExperimentConfig):
        with pytest.raises(ConfigError, match=rf"^{f.name}: got <object object"):
            ExperimentConfig(**{**CONFIG.as_dict(), f.name: object()})


def test_papermill_text_for_a_list_of_seeds_gets_the_advice_to_use_y():
    """`-p seeds '[0]'` gives the notebook the text "[0]"; its configs are made one per seed."""
    parameters = {**load_preset("smoke"), "seeds": "[0]"}
    with pytest.raises(ConfigError, match=r"^seed: got '\[' \(str\).*pass lists and dicts with -y"):
        [experiment_config(parameters, seed=s) for s in parameters["seeds"]]


def test_compare_levels_must_fit_rounds_and_not_repeat():
    with pytest.raises(ConfigError, match=r"compare_levels \(1, 3\): must lie in 1..rounds=2 .*lower them or raise rounds"):
        ExperimentConfig(**{**CONFIG.as_dict(), "rounds": 2})
    with pytest.raises(ConfigError, match=r"compare_levels \(3, 3\): each level once"):
        ExperimentConfig(**{**CONFIG.as_dict(), "compare_levels": (3, 3)})
    assert ExperimentConfig(**{**CONFIG.as_dict(), "rounds": 0, "compare_levels": ()}).rounds == 0


def test_boundaries_of_the_ranges():
    accepted = [{"rewind_step": CONFIG.steps - 1}, {"rewind_step": 0}, {"lr": 1}, {"train_fraction": 1.0},
                {"prune_rate": 0.999}, {"test_limit": 1}, {"data_dir": "/anywhere"}, {"seed": 0}]
    for change in accepted:
        ExperimentConfig(**{**CONFIG.as_dict(), **change})
    with pytest.raises(ConfigError, match="rewind_step"):
        ExperimentConfig(**{**CONFIG.as_dict(), "rewind_step": CONFIG.steps})


def test_lists_from_yaml_or_papermill_give_the_same_config_as_tuples():
    as_lists = ExperimentConfig.from_dict({**CONFIG.as_dict(), "hidden": [24, 24], "compare_levels": [1, 3]})
    assert as_lists == CONFIG and as_lists.hidden == (24, 24) and as_lists.compare_levels == (1, 3)
    assert ExperimentConfig(**{**CONFIG.as_dict(), "hidden": [24, 24]}).as_dict() == CONFIG.as_dict()


def test_same_seed_same_data_different_data_seed_different_data():
    clone = changed(TINY, clone=True)
    for config in (TINY, clone):
        first, again = load_data(config), load_data(config)
        for a, b in zip(first, again):  # train and test
            assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
        other_seed = load_data(changed(config, seed=1))  # seed: initialization, batches, masks
        assert all(torch.equal(a.x, b.x) for a, b in zip(first, other_seed))
        other_data = load_data(changed(config, data_seed=1))
        assert not any(torch.equal(a.x, b.x) for a, b in zip(first, other_data))
    ds = load_data(TINY)[0]
    assert torch.equal(gaussian_clone(ds, seed=3).x, gaussian_clone(ds, seed=3).x)
    assert not torch.equal(gaussian_clone(ds, seed=3).x, gaussian_clone(ds, seed=4).x)


def test_same_seeds_same_results_and_figure_data_other_seeds_differ(tmp_path):
    runs = {
        name: run_experiment(config, run_store=tmp_path / name, device="cpu")
        for name, config in [
            ("first", TINY),
            ("again", TINY),
            ("seed", changed(TINY, seed=1)),
            ("data_seed", changed(TINY, data_seed=1)),
        ]
    }
    assert_same_results(runs["first"], runs["again"])
    pd.testing.assert_frame_equal(level_summary(runs["first"]), level_summary(runs["again"]), check_exact=True)
    # seeds stacked as replicas of one training give each seed the bits it gets alone (CPU)
    together = run_experiments([TINY, changed(TINY, seed=1)], run_store=tmp_path / "together", device="cpu")
    assert_same_results(together[0], runs["first"])
    assert_same_results(together[1], runs["seed"])
    for other in ("seed", "data_seed"):
        for level in (("imp", 0), ("imp", 2), ("random", 2)):
            state, other_state = runs["first"].load(level, "state"), runs[other].load(level, "state")
            assert not torch.equal(state["weights.0"], other_state["weights.0"]), (other, level)
        assert not torch.equal(runs["first"].masks(("imp", 2))[0], runs[other].masks(("imp", 2))[0]), other
        assert runs["first"].metrics(("imp", 2)) != runs[other].metrics(("imp", 2)), other


def test_a_clone_run_keys_the_store_on_the_clone_recipe(tmp_path):
    """Runs of an older clone recipe are never read as this one's; runs on the data keep their key."""
    data, clone = Experiment(TINY, tmp_path), Experiment(changed(TINY, clone=True), tmp_path)
    assert json.loads((data.run.path / "config.json").read_text()) == json.loads(json.dumps({**TINY.as_dict(), "schema_version": SCHEMA_VERSION}))
    stored = json.loads((clone.run.path / "config.json").read_text())
    assert stored["clone_version"] == 2 and CLONE_VERSION == 3  # versions 2 and 3 draw the same bits at data seed 0
    assert clone.run.path.name == config_hash({**changed(TINY, clone=True).as_dict(), "clone_version": 2, "schema_version": SCHEMA_VERSION})
    other_draw = Experiment(changed(TINY, clone=True, data_seed=1), tmp_path)
    assert json.loads((other_draw.run.path / "config.json").read_text())["clone_version"] == 3


def test_each_seed_draws_its_own_data_and_clone_and_no_two_draws_share_rows():
    """data_seed follows the seed unless fixed; a clone's test split (stream 2s + 1) is not the next draw's training split."""
    assert ExperimentConfig(seed=3).data_seed == 3 and ExperimentConfig(seed=3, data_seed=0).data_seed == 0
    assert ExperimentConfig(seed=3).description == "skewed_texture"
    assert ExperimentConfig(seed=3, data_seed=0).description == "skewed_texture (data_seed=0)"
    draws = [load_data(changed(TINY, clone=True, data_seed=s)) for s in (0, 1)]
    rows = [{tuple(row.tolist()) for row in split.x.flatten(1)[:50]} for train, test in draws for split in (train, test)]
    assert all(not (a & b) for i, a in enumerate(rows) for b in rows[i + 1:])


def test_a_description_names_what_a_config_changes():
    assert ExperimentConfig().description == "skewed_texture"
    assert ExperimentConfig(clone=True, seed=3, lr=0.5).description == "skewed_texture-clone"  # seeds and lr: not the data or shape
    assert ExperimentConfig(train_fraction=0.1, superclasses="mod2").description == "skewed_texture (train_fraction=0.1, superclasses=mod2)"
    assert ExperimentConfig(dataset_options={"sigma": 0.5}, hidden=(1024,) * 3, batchnorm=True, steps=8000).description == (
        "skewed_texture (sigma=0.5, hidden=(1024, 1024, 1024), batchnorm=True, steps=8000)"
    )


def test_superclass_groupings_and_training_fractions_train_as_stacked_models_bit_for_bit_as_alone(tmp_path):
    """Superclass groupings of one number of classes (semantic and mod2: two each) train as one
    stacked model, training fractions (sets of 200 and 400 images, one test set) as another;
    each run stores exactly what it stores when trained alone."""
    configs = [changed(TINY, seed=seed, compare_levels=(), superclasses=grouping) for grouping in ("semantic", "mod2") for seed in (0, 1)]
    configs += [changed(TINY, seed=seed, compare_levels=(), train_fraction=fraction) for fraction in (0.5, 1.0) for seed in (0, 1)]
    parts = stacked_parts([Experiment(config, tmp_path) for config in configs])
    assert [[e.config.superclasses or e.config.train_fraction for e in part] for part in parts] == [
        ["semantic"] * 2 + ["mod2"] * 2, [0.5, 0.5, 1.0, 1.0]]
    assert_stacked_as_alone(configs, tmp_path)


def test_a_progress_line_names_every_dataset_trained_together(tmp_path, monkeypatch):
    log = tmp_path / "progress.log"
    monkeypatch.setenv("IMPRF_PROGRESS_LOG", str(log))
    run_experiments([changed(TINY, superclasses=g, rounds=0, compare_levels=()) for g in ("semantic", "mod2")], run_store=tmp_path, device="cpu")
    assert ("skewed_texture (n=400, size=8, superclasses=semantic, hidden=(16, 16), steps=40) and "
            "skewed_texture (n=400, size=8, superclasses=mod2, hidden=(16, 16), steps=40) seeds [0]: dense") in log.read_text()


def test_a_photos_run_keys_the_store_on_the_photos_recipe(tmp_path):
    """photos' version-1 runs (circular scramble only, test clone from training halves) are never read as
    version 2's; other datasets' keys stay as they were (the test above)."""
    config = changed(TINY, dataset="photos", dataset_options={"n": 64, "size": 8})
    stored = json.loads((Experiment(config, tmp_path).run.path / "config.json").read_text())
    assert stored["recipe_version"] == RECIPE_VERSIONS["photos"] == 2
    assert "recipe_version" not in json.loads((Experiment(TINY, tmp_path).run.path / "config.json").read_text())
