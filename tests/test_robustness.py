"""Notebook 07's matrix (imprf_utils.notebooks.robustness): its cells, configs, measures, claims and the default rule."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml

from imprf_utils.__main__ import main
from imprf_utils.measures.shape import rf_width_ratio
from imprf_utils.notebooks import robustness
from imprf_utils.notebooks.robustness import Cell
from imprf_utils.report.claims import Claim, judge
from imprf_utils.report.records import write_claims_record
from imprf_utils.training.experiment import DENSE, Experiment
from imprf_utils.training.presets import load_preset, notebook_configs

from conftest import TINY

TINY_PRESET = {
    **{k: v for k, v in TINY.as_dict().items() if k not in ("seed", "clone", "superclasses", "train_fraction")},
    "hidden": [16, 16],
    "compare_levels": [2],
    "seeds": [0, 1],
    "robustness_widths": [8, 16],
    "robustness_long_widths": [16],
    "robustness_long_steps": 2,
    "robustness_pilot_sigmas": [0.8, 0.3],
    "robustness_target_accuracy": 0.8,
}
"""Seconds in all: two seeds, widths 8 and 16 (with the long follow-up at 16), two pilot skews."""


def test_cells_cross_width_batchnorm_and_task_then_the_long_follow_up():
    cells = robustness.cells({"robustness_widths": [256, 1024], "robustness_long_widths": [1024]})
    plain = [Cell(w, bn, t) for w in (256, 1024) for bn in (False, True) for t in ("base", "harder")]
    assert cells == plain + [c._replace(long=True) for c in plain if c.width == 1024]
    assert Cell(1024, True, "harder", long=True).label == "1024, BN, harder task, long"


def test_the_base_cell_at_the_presets_width_is_notebook_03s_data_runs():
    """So notebook 07 reads notebook 03's networks instead of training them again."""
    preset = load_preset("default")
    base = robustness.matrix_configs(preset, sigma=0.5)[Cell(256, False, "base")]
    assert base == notebook_configs(preset).data


def test_matrix_configs_set_width_batchnorm_sigma_and_steps():
    matrix = robustness.matrix_configs(TINY_PRESET, sigma=0.3)
    config = matrix[Cell(16, True, "harder", long=True)][1]
    assert (config.hidden, config.batchnorm, config.seed) == ((16, 16), True, 1)
    assert config.dataset_options == {**TINY.dataset_options, "sigma": 0.3}
    assert (config.steps, config.eval_every) == (2 * TINY.steps, 2 * TINY.eval_every)
    assert matrix[Cell(8, False, "base")][0].dataset_options == TINY.dataset_options


def test_another_datasets_options_are_not_given_to_skewed_texture():
    pilot = robustness.pilot_configs({**load_preset("default"), "dataset": "photos", "dataset_options": {"grayscale": True}})
    assert all(c.dataset == "skewed_texture" and c.dataset_options == {"sigma": s} for s, g in pilot.items() for c in g)


def test_the_pilot_is_the_harder_cells_at_the_presets_width_and_the_harder_sigma_is_the_closest_to_the_target():
    pilot = robustness.pilot_configs(TINY_PRESET)
    assert list(pilot) == [0.8, 0.3]
    for sigma, configs in pilot.items():  # so the cell at the chosen sigma reads the pilot's dense networks
        assert configs == robustness.matrix_configs(TINY_PRESET, sigma)[Cell(16, False, "harder")]
    table = pd.DataFrame({"sigma": [0.8, 0.8, 0.5, 0.5, 0.3, 0.3], "seed": [0, 1] * 3, "accuracy": [0.95, 0.93, 0.83, 0.81, 0.6, 0.62]})
    assert robustness.harder_sigma(table, 0.8) == 0.5
    assert robustness.harder_sigma(table.assign(accuracy=[0.9, 0.9, 0.7, 0.7, 0.5, 0.5]), 0.8) == 0.8  # a tie: the larger sigma


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    store = tmp_path_factory.mktemp("runs")
    summaries = robustness.sweep_matrix(TINY_PRESET, run_store=store, device="cpu")
    assert [s.failed for s in summaries] == [[], []]
    return robustness.run(robustness.stored_matrix_configs(TINY_PRESET, store), run_store=store, device="cpu")


def test_the_pilot_trains_dense_levels_only_and_the_chosen_sigmas_cell_trains_on_from_them(matrix):
    harder = matrix[Cell(16, False, "harder")]
    store = harder[0].run.path.parents[1]
    chosen = harder[0].config.dataset_options["sigma"]
    pilot = robustness.experiments_of(robustness.pilot_configs(TINY_PRESET), store)
    assert [exp.run.path for exp in pilot[chosen]] == [exp.run.path for exp in harder]
    assert not harder[0].missing_levels()
    (other,) = set(pilot) - {chosen}
    assert all(exp.stored_levels() == [DENSE] for exp in pilot[other])


def test_imp_dynamics_against_scipy_and_the_definition(matrix):
    exp = matrix[Cell(8, True, "base")][1]
    rewind, trained = exp.rewind_model(DENSE).weights[0][0].detach(), exp.model(DENSE).weights[0][0].detach()
    rho = scipy.stats.spearmanr(exp.removal_round(0).flatten().numpy(), rewind.abs().flatten().numpy()).statistic
    change = np.linalg.norm((trained - rewind).numpy()) / np.linalg.norm(rewind.numpy())
    measured = robustness.imp_dynamics(exp)
    assert measured["removal_rho"] == pytest.approx(rho, abs=1e-12)
    assert measured["weight_change"] == pytest.approx(change, rel=1e-5)


def test_network_table_has_a_row_per_cell_and_seed_with_the_masks_measures(matrix):
    table = robustness.network_table(matrix)
    assert len(table) == 2 * len(matrix) and list(dict.fromkeys(table.cell)) == [c.label for c in matrix]
    row = table[(table.cell == "16, BN, harder task, long") & (table.seed == 1)].iloc[0]
    exp = matrix[Cell(16, True, "harder", long=True)][1]
    shape = exp.data[0].image_shape
    assert row.random_ratio == rf_width_ratio(exp.masks(("random", 2))[0], shape, periodic=True, seed=1)  # the network's seed
    assert row.imp_minus_random == row.imp_ratio - row.random_ratio
    assert row.random_accuracy == exp.metrics(("random", 2))["final_accuracy"]
    assert 0 <= row.weight_change and -1 <= row.removal_rho <= 1


def test_the_sweep_command_trains_the_pilot_and_the_matrix_the_notebook_reads(matrix, tmp_path):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump({**TINY_PRESET, "preset": "tiny"}))
    store = tmp_path / "runs"
    assert main(["sweep", "--preset", str(preset), "--run-store", str(store), "--robustness", "--device", "cpu"]) == 0
    stored = {p.parent.name for p in store.glob("*/*/config.json")}
    expected = {exp.run.path.name for group in matrix.values() for exp in group}
    assert expected <= stored


def claims_of(effects: dict[Cell, list[float]]):
    table = pd.DataFrame(
        [dict(cell=cell.label, seed=seed, imp_minus_random=v) for cell, values in effects.items() for seed, v in enumerate(values)]
    )
    return table, robustness.cell_claims(table, list(effects))


def test_cause_claims_pair_the_cells_by_seed_and_skip_causes_not_run():
    effects = {Cell(256, False, "base"): [-0.1, -0.12, -0.11], Cell(256, True, "base"): [-0.02, -0.01, -0.03],
               Cell(256, True, "harder"): [-0.08, -0.09, -0.07]}
    table, _ = claims_of(effects)
    causes = robustness.cause_claims(table, list(effects))
    assert [c.claim.split(":")[0] for c in causes] == ["BatchNorm weakens localization", "the harder task strengthens it under BatchNorm"]
    assert causes[0].values == pytest.approx((0.08, 0.11, 0.08)) and causes[0].direction == "greater"
    assert causes[1].values == pytest.approx((-0.06, -0.08, -0.04)) and causes[1].direction == "less"


@pytest.mark.parametrize(
    "widths, harder, expected",
    [
        ((256, 1024), [-0.1, -0.11, -0.12, -0.1, -0.1], True),  # every verdict holds, the papers' width included
        ((256,), [-0.1, -0.11, -0.12, -0.1, -0.1], None),  # every verdict holds, width 1024 not run: undecided
        ((256, 1024), [0.0, 0.001, -0.001, 0.0, 0.0], False),  # a cell fails
    ],
)
def test_the_default_rule_needs_every_cell_to_hold_and_the_papers_width(widths, harder, expected):
    effects = {Cell(w, bn, task): (harder if task == "harder" else [0.0, 0.001, -0.001, 0.0, 0.001])
               for w in widths for bn in (False, True) for task in ("base", "harder")}
    effects[Cell(widths[-1], True, "base", long=True)] = [-0.1, -0.11, -0.12, -0.1, -0.1]  # long cells do not count
    table, claims = claims_of(effects)
    verdicts = robustness.task_verdicts(judge(list(claims.values())), claims, figures_dir=None)
    assert verdicts.loc["harder", "qualifies"] == expected
    assert not verdicts.loc["base", "qualifies"] and verdicts.loc["base", "qualifies"] is not None
    assert list(verdicts.columns) == [*(f"{w}{bn}" for w in widths for bn in ("", ", BN")), "qualifies"]


def test_the_cell_of_notebook_03s_networks_restates_its_first_row_and_takes_its_verdict_from_03s_record(matrix, tmp_path):
    """Counted once: the cell is shown with "= 03, row 1", outside 07's Holm family; the rule reads 03's verdict."""
    restated = robustness.notebook_03_cell(matrix, TINY_PRESET)
    assert restated == Cell(16, False, "base")  # the preset's width, no BatchNorm, base task: 03's data runs
    effects = {cell: [-0.1, -0.12, -0.11] for cell in matrix}
    table = pd.DataFrame([dict(cell=c.label, seed=s, imp_minus_random=v) for c, vs in effects.items() for s, v in enumerate(vs)])
    claims = robustness.cell_claims(table, list(effects), restated=restated)
    judged = judge(list(claims.values()))
    assert judged.set_index("claim").verdict[claims[restated].claim] == "= 03, row 1"
    alone = robustness.task_verdicts(judged, claims, figures_dir=tmp_path)  # 07 run without 03's record beside it
    assert alone.loc["base", "16"] == robustness.NOT_JUDGED and alone.loc["base", "qualifies"] is None
    in_03 = judge([Claim("claim", "IMP is more local than random pruning", "Fig. 1A", [0.0, 0.01, -0.01], "less", 0.01)])
    write_claims_record(in_03, "03", dataset=robustness.DATASET, preset="tiny", figures_dir=tmp_path)
    verdicts = robustness.task_verdicts(judged, claims, figures_dir=tmp_path)
    assert verdicts.loc["base", "16"] == in_03.verdict[0] != "holds" and verdicts.loc["base", "qualifies"] is False
