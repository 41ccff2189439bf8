"""Notebook 08's candidates, wide cells, criterion and choice of the best candidate (imprf_utils.notebooks.batchnorm_regime)."""

import pandas as pd
import pytest
import yaml

from imprf_utils.__main__ import main
from imprf_utils.errors import ConfigError
from imprf_utils.notebooks import batchnorm_regime as regime
from imprf_utils.notebooks.batchnorm_regime import Regime
from imprf_utils.report.claims import judge
from imprf_utils.training.experiment import Experiment
from imprf_utils.training.presets import load_preset, notebook_configs

from conftest import TINY


def test_the_photo_candidates_are_notebook_03s_runs_on_the_photos_bn_presets():
    """The run store shares them: notebook 03 on photos_bn / photos32_bn and notebook 08 train the same networks."""
    configs = regime.candidate_configs(load_preset("default"))
    assert configs[Regime("photos", 256)] == notebook_configs(load_preset("photos_bn")).data
    assert configs[Regime("photos32", 256)] == notebook_configs(load_preset("photos32_bn")).data


def test_every_candidate_is_the_preset_with_batchnorm_and_its_changes():
    preset = load_preset("default")
    configs = regime.candidate_configs(preset)
    assert list(configs) == [Regime(name, 256) for name in preset["bn_candidates"]]
    for (name, _), group in configs.items():
        assert [c.seed for c in group] == preset["seeds"] and all(c.batchnorm and c.hidden == (256,) * 3 for c in group)
        for field, value in preset["bn_candidates"][name].items():
            assert all(getattr(c, field) == value for c in group), (name, field)
    base = configs[Regime("base", 256)][0]
    assert (base.dataset, base.lr, base.steps, base.rewind_step) == ("skewed_texture", 0.1, 2000, 100)
    assert configs[Regime("rewind 500", 256)][0].rewind_step == 500


def test_the_4x_candidate_is_the_gpu_presets_and_every_default_candidate_may_become_a_wide_cell():
    """The amendment of 08's criteria: 2 cores cannot afford the 4x candidate in the default run."""
    gpu, default = load_preset("gpu"), load_preset("default")
    assert regime.candidate_configs(gpu)[Regime("4x steps", 256)][0].steps == 8000
    assert all(group[0].steps <= default["bn_wide_steps_limit"] for group in regime.candidate_configs(default).values())
    assert {**default["bn_candidates"], "4x steps": gpu["bn_candidates"]["4x steps"]} == gpu["bn_candidates"]


def test_the_wide_cells_are_base_and_the_best_at_the_wide_width_and_seeds_compared_at_the_last_round():
    preset = load_preset("default")
    wide = regime.wide_configs(preset, "lr 0.4")
    assert list(wide) == [Regime("base", 1024), Regime("lr 0.4", 1024)]
    for group in wide.values():
        assert [c.seed for c in group] == [0, 1, 2]
        assert all(c.hidden == (1024,) * 3 and c.batchnorm and c.compare_levels == (10,) for c in group)
    assert wide[Regime("lr 0.4", 1024)][0].lr == 0.4
    assert list(regime.wide_configs(preset, "base")) == [Regime("base", 1024)]


@pytest.mark.parametrize(
    "candidates, message",
    [
        ({"lr 0.4": {"lr": 0.4}}, "with 'base': {} among them"),
        ({"base": {"lr": 0.2}}, "with 'base': {} among them"),
        ({"base": {}, "wide": {"hidden": [1024]}}, "at the preset's width and seeds"),
        ({"base": {}, "typo": {"stepz": 10}}, "unknown experiment parameters"),
    ],
)
def test_bad_candidates_are_refused_before_any_work(candidates, message):
    with pytest.raises(ConfigError, match=message):
        regime.candidate_configs({**load_preset("default"), "bn_candidates": candidates})


def network_rows(name: str, imp_minus_random: list[float], imp_accuracy: list[float], random_accuracy: list[float]) -> list[dict]:
    label = Regime(name, 256).label
    return [
        dict(name=name, width=256, cell=label, seed=seed, imp_minus_random=d, imp_accuracy=a, random_accuracy=r)
        for seed, (d, a, r) in enumerate(zip(imp_minus_random, imp_accuracy, random_accuracy))
    ]


TABLE = pd.DataFrame(
    network_rows("base", [-0.02, -0.03, -0.025], [0.99, 0.99, 0.99], [0.99, 0.995, 0.99])  # saturated: no pressure
    + network_rows("lr 0.4", [-0.12, -0.10, -0.11], [0.90, 0.91, 0.90], [0.80, 0.82, 0.81])  # qualifies
    + network_rows("4x steps", [-0.30, -0.31, -0.29], [0.95, 0.95, 0.95], [0.70, 0.71, 0.70])  # best, but too long
    + network_rows("photos", [-0.09, -0.085, -0.088], [0.80, 0.80, 0.80], [0.60, 0.61, 0.60])  # qualifies, less local
)
PARAMETERS = {
    **load_preset("default"),
    "seeds": [0, 1, 2],
    "bn_candidates": {"base": {}, "lr 0.4": {"lr": 0.4}, "4x steps": {"steps": 8000}, "photos": {"dataset": "photos"}},
}


def test_a_regime_qualifies_when_it_localizes_beyond_005_and_random_masks_lose_more_than_003():
    claims = regime.criterion_claims(TABLE, [Regime(n, 256) for n in PARAMETERS["bn_candidates"]])
    (local, pressure) = claims[Regime("lr 0.4", 256)]
    assert list(local.values) == pytest.approx([-0.07, -0.05, -0.06]) and local.direction == "less"
    assert list(pressure.values) == pytest.approx([-0.07, -0.06, -0.06]) and pressure.kind == "sanity check"
    table = regime.qualifying(judge([c for rows in claims.values() for c in rows]), claims)
    assert table.qualifies.to_dict() == {"base (256)": False, "lr 0.4 (256)": True, "4x steps (256)": True, "photos (256)": True}
    assert table.loc["base (256)", "pressure"] == "fails"


def test_the_best_candidate_is_the_most_local_qualifying_one_within_the_steps_limit():
    claims = regime.criterion_claims(TABLE, [Regime(n, 256) for n in PARAMETERS["bn_candidates"]])
    qualified = regime.qualifying(judge([c for rows in claims.values() for c in rows]), claims)
    assert regime.best_candidate(TABLE, qualified, PARAMETERS) == "lr 0.4"  # 4x steps is beyond the limit
    assert regime.best_candidate(TABLE, qualified, {**PARAMETERS, "bn_wide_steps_limit": 8000}) == "4x steps"
    nobody = qualified.assign(qualifies=False)
    assert regime.best_candidate(TABLE, nobody, PARAMETERS) == "photos"  # the most pressure (0.197) within the limit


def test_the_sweep_command_trains_the_candidates_and_the_wide_cells_the_notebook_reads(tmp_path):
    """``python -m imprf_utils sweep --bn-regime``: every candidate, then the wide cells of the best one."""
    tiny = {
        **{k: v for k, v in TINY.as_dict().items() if k not in ("seed", "clone", "superclasses", "train_fraction")},
        "preset": "tiny", "hidden": [8], "compare_levels": [2], "seeds": [0, 1],
        "bn_candidates": {"base": {}, "lr 0.4": {"lr": 0.4}}, "bn_wide_width": 12, "bn_wide_seeds": [0, 1],
        "bn_wide_steps_limit": TINY.steps,
    }
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(tiny))
    store = tmp_path / "runs"
    assert main(["sweep", "--preset", str(preset), "--run-store", str(store), "--bn-regime", "--device", "cpu"]) == 0
    regimes = {**regime.candidate_configs(tiny), **regime.stored_wide_configs(tiny, store)}
    assert len(regimes) in (2 + 1, 2 + 2) and Regime("base", 12) in regimes
    expected = {Experiment(c, store).run.path for group in regimes.values() for c in group}
    assert expected <= {p.parent for p in store.glob("*/*/config.json")}
