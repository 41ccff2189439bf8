"""Notebook 07's robustness matrix: which change removes IMP's localization on the default task.

A **cell** is one architecture and task: hidden width × BatchNorm × difficulty (the skew σ
of ``skewed_texture``: the base task's, or a harder one) × training length (the preset's
steps, or ``robustness_long_steps`` times as many in the cells of ``robustness_long_widths``).
Every cell trains the preset's seeds on the data only: dense, ``rounds`` IMP rounds, and
oneshot and random pruning at ``compare_levels``, through the run store (the base cell at the
preset's width *is* notebook 03's data runs).

The harder σ is chosen by a **pilot** before any cell runs: dense networks at the preset's
width, without BatchNorm, one group per σ of ``robustness_pilot_sigmas``; the σ whose mean
dense test accuracy lies closest to ``robustness_target_accuracy`` is the harder task. The
pilot's networks are the dense level of that σ's harder-task cell (its configs, trained dense
only), so the cell at the chosen σ reads them instead of training them again.

Per network, ``network_table`` gives what tells the causes apart: IMP's and random
pruning's RF-width ratio after the last round and their difference, compactness, the
accuracy of IMP's and of random masks (a task random masks solve as well as IMP's puts no
pressure on the choice of inputs), ρ(removal round, rewind |W|) (near 1: IMP degenerates
into pruning by initial magnitude) and the first layer's relative weight change in dense
training (near 0: lazy training, the weights stay where they started).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from typing import Any, NamedTuple, TypeVar

import pandas as pd
import torch

from imprf_utils.measures.shape import compactness_ratio, rf_width_ratio
from imprf_utils.report.claims import Claim
from imprf_utils.report.records import referenced_row
from imprf_utils.training.config import ExperimentConfig
from imprf_utils.training.experiment import DENSE, Experiment
from imprf_utils.training.presets import check_notebook_parameters, experiment_config, notebook_configs
from imprf_utils.training.sweep import SweepSummary, run_sweep

Key = TypeVar("Key", bound=Hashable)

DATASET = "skewed_texture"
"""The task family of the matrix: its skew σ sets the difficulty."""
PAPERS_WIDTH = 1024
"""The hidden width of Pellegrini & Biroli's and Redman et al.'s networks (with BatchNorm)."""
MARGIN = 0.01
"""The claims' smallest effect of interest in the RF-width ratio (as in notebook 03)."""


class Cell(NamedTuple):
    """One cell of the matrix."""

    width: int
    """Width of every hidden layer."""
    batchnorm: bool
    """BatchNorm on each layer's input."""
    task: str
    """"base" (the preset's σ) or "harder" (the pilot's σ)."""
    long: bool = False
    """Trained ``long_steps`` times the preset's steps a round."""

    @property
    def label(self) -> str:
        """E.g. "256, BN, harder task, 4× steps"."""
        return ", ".join([str(self.width), *(["BN"] if self.batchnorm else []), f"{self.task} task", *(["long"] if self.long else [])])


def _task_options(parameters: Mapping[str, Any], sigma: float | None) -> dict[str, Any]:
    """The preset's options of ``skewed_texture`` (none for another dataset), with skew ``sigma`` unless None."""
    own = parameters.get("dataset", DATASET) == DATASET
    options = dict(parameters.get("dataset_options") or {}) if own else {}
    return options if sigma is None else {**options, "sigma": float(sigma)}


def pilot_configs(parameters: Mapping[str, Any]) -> dict[float, list[ExperimentConfig]]:
    """The pilot, per candidate σ: the configs of the harder-task cell at the preset's width without
    BatchNorm, of which the pilot trains the dense level alone (``run(..., dense_only=True)``)."""
    check_notebook_parameters(parameters)
    return {
        sigma: _cell_configs(parameters, parameters["hidden"], batchnorm=False, sigma=sigma)
        for sigma in parameters["robustness_pilot_sigmas"]
    }


def configs_of(groups: Mapping[Key, list[ExperimentConfig]]) -> list[ExperimentConfig]:
    """Every config of the groups, in order."""
    return [config for group in groups.values() for config in group]


def experiments_of(groups: Mapping[Key, list[ExperimentConfig]], run_store: str | os.PathLike) -> dict[Key, list[Experiment]]:
    """The groups' experiments in ``run_store`` (what is stored of them, nothing trained)."""
    return {key: [Experiment(config, run_store) for config in group] for key, group in groups.items()}


def run(
    groups: Mapping[Key, list[ExperimentConfig]], *, run_store: str | os.PathLike, device: str = "auto",
    dense_only: bool = False,
) -> dict[Key, list[Experiment]]:
    """Train what the run store lacks of every group (of its dense level alone with ``dense_only``:
    the pilot) through ``run_sweep`` (one stacked task per group of seeds); the groups'
    experiments. Raises RuntimeError naming the runs that failed.
    """
    summary = run_sweep(configs_of(groups), run_store=run_store, device=device, dense_only=dense_only)
    if summary.failed:
        raise RuntimeError(f"{len(summary.failed)} runs failed:\n{summary}")
    return experiments_of(groups, run_store)


def stored_matrix_configs(parameters: Mapping[str, Any], run_store: str | os.PathLike) -> dict[Cell, list[ExperimentConfig]]:
    """``matrix_configs`` at the harder σ that the pilot stored in ``run_store`` picks."""
    table = pilot_table(experiments_of(pilot_configs(parameters), run_store))
    return matrix_configs(parameters, harder_sigma(table, parameters["robustness_target_accuracy"]))


def sweep_matrix(
    parameters: Mapping[str, Any], executor: Any = None, *, run_store: str | os.PathLike, device: str = "auto",
    threads: int | None = None,
) -> list[SweepSummary]:
    """The pilot, then (when no pilot run failed) the matrix at its harder σ, through ``run_sweep``'s ``executor``.

    What ``python -m imprf_utils sweep --robustness`` runs: notebook 07 then reads every run from the store.
    """
    pilot = pilot_configs(parameters)
    summaries = [run_sweep(configs_of(pilot), executor, run_store=run_store, device=device, threads=threads, dense_only=True)]
    if not summaries[0].failed:
        matrix = stored_matrix_configs(parameters, run_store)
        summaries.append(run_sweep(configs_of(matrix), executor, run_store=run_store, device=device, threads=threads))
    return summaries


def pilot_table(pilot: Mapping[float, list[Experiment]]) -> pd.DataFrame:
    """One row per pilot network: sigma, seed, dense test accuracy (final)."""
    return pd.DataFrame(
        [
            dict(sigma=sigma, seed=exp.config.seed, accuracy=exp.metrics(DENSE)["final_accuracy"])
            for sigma, experiments in pilot.items()
            for exp in experiments
        ]
    )


def harder_sigma(pilot: pd.DataFrame, target: float) -> float:
    """The σ whose mean dense accuracy (``pilot_table``) lies closest to ``target``; a tie goes to the larger σ."""
    accuracy = pilot.groupby("sigma").accuracy.mean()
    distance = (accuracy - target).abs()
    return float(max(distance.index[distance == distance.min()]))


def cells(parameters: Mapping[str, Any]) -> list[Cell]:
    """The matrix: ``robustness_widths`` × BatchNorm off/on × base/harder task, then the long follow-up
    of every cell whose width is in ``robustness_long_widths``; in this order."""
    plain = [
        Cell(width, batchnorm, task)
        for width in parameters["robustness_widths"]
        for batchnorm in (False, True)
        for task in ("base", "harder")
    ]
    return plain + [cell._replace(long=True) for cell in plain if cell.width in parameters["robustness_long_widths"]]


def matrix_configs(parameters: Mapping[str, Any], sigma: float) -> dict[Cell, list[ExperimentConfig]]:
    """Every cell's configs, one per seed; ``sigma``: the harder task's skew (``harder_sigma``)."""
    check_notebook_parameters(parameters)
    depth = len(parameters["hidden"])
    return {
        cell: _cell_configs(
            parameters, [cell.width] * depth, cell.batchnorm, sigma if cell.task == "harder" else None, cell.long
        )
        for cell in cells(parameters)
    }


def _cell_configs(
    parameters: Mapping[str, Any], hidden: list[int], batchnorm: bool, sigma: float | None, long: bool = False
) -> list[ExperimentConfig]:
    """The configs of a cell, one per seed: ``skewed_texture`` at skew ``sigma`` (None: the base
    task's), ``hidden`` widths, BatchNorm or not, the preset's steps or ``robustness_long_steps``
    times as many. The pilot's σ are harder-task cells too, so the cell at the chosen σ is theirs."""
    changes = dict(dataset=DATASET, dataset_options=_task_options(parameters, sigma), hidden=hidden, batchnorm=batchnorm)
    if long:
        factor = parameters["robustness_long_steps"]
        changes.update(steps=parameters["steps"] * factor, eval_every=parameters["eval_every"] * factor)
    return [experiment_config(parameters, **changes, seed=seed) for seed in parameters["seeds"]]


@torch.no_grad()
def imp_dynamics(exp: Experiment) -> dict[str, float]:
    """How IMP chose the first layer's inputs.

    - ``removal_rho``: Spearman ρ between a weight's IMP removal round (``Experiment.removal_round``)
      and its magnitude |W| at the rewind step; near 1, IMP only replays the initial magnitudes;
    - ``weight_change``: ‖W_T − W_r‖_F / ‖W_r‖_F of the dense network's first layer, W_T
      trained, W_r at the rewind step; near 0, dense training barely moved the weights.
    """
    rewind = exp.rewind_model(DENSE).weights[0][0]
    trained = exp.model(DENSE).weights[0][0]
    rounds = pd.Series(exp.removal_round(0).flatten().numpy())
    return dict(
        removal_rho=float(rounds.corr(pd.Series(rewind.abs().flatten().numpy()), method="spearman")),
        weight_change=float((trained - rewind).norm() / rewind.norm()),
    )


def network_table(matrix: Mapping[Cell, list[Experiment]]) -> pd.DataFrame:
    """One row per cell and seed, at the last IMP round's sparsity.

    Columns: the cell's fields and ``cell`` (its label), seed; ``imp_ratio``,
    ``oneshot_ratio``, ``random_ratio`` (``measures.shape.rf_width_ratio``, < 1 = local) and the
    differences ``imp_minus_random``, ``imp_minus_oneshot``; ``imp_component``,
    ``random_component`` (``measures.shape.compactness_ratio``'s largest-component ratio, > 1 =
    blob-like); ``dense_accuracy``, ``imp_accuracy``, ``random_accuracy``; and
    ``imp_dynamics``' removal_rho and weight_change. Each network's seed draws its random placements.
    """
    rows = []
    for cell, experiments in matrix.items():
        for exp in experiments:
            shape, periodic = exp.data[0].image_shape, exp.data[0].periodic
            last = exp.config.rounds
            row: dict[str, Any] = dict(**cell._asdict(), cell=cell.label, seed=exp.config.seed)
            for method in ("imp", "oneshot", "random"):
                mask = exp.masks((method, last))[0]
                row[f"{method}_ratio"] = rf_width_ratio(mask, shape, periodic=periodic, seed=exp.config.seed)
                if method != "oneshot":
                    row[f"{method}_component"] = compactness_ratio(mask, shape, periodic=periodic, seed=exp.config.seed)[0]
                    row[f"{method}_accuracy"] = exp.metrics((method, last))["final_accuracy"]
            row["dense_accuracy"] = exp.metrics(DENSE)["final_accuracy"]
            rows.append({**row, **imp_dynamics(exp)})
    table = pd.DataFrame(rows)
    table["imp_minus_random"] = table.imp_ratio - table.random_ratio
    table["imp_minus_oneshot"] = table.imp_ratio - table.oneshot_ratio
    return table


def per_cell(table: pd.DataFrame, column: str, cell: Cell) -> pd.Series:
    """``column`` of one cell's networks, indexed by seed (a claim's per-network values)."""
    rows = table[table.cell == cell.label]
    if rows.empty:
        raise KeyError(f"cell {cell.label!r} is not in the table; its cells: {', '.join(table.cell.unique())}")
    return rows.set_index("seed")[column]


NOTEBOOK_03_ROW = "03, row 1"
"""Notebook 03's first row, IMP − random on its data runs: the cell of those networks restates it."""


NOT_JUDGED = "not judged here"
"""A restated cell's verdict when its own notebook has written no record beside this one's figures."""


def referenced_verdict(same_as: str, figures_dir: str | os.PathLike | None) -> str:
    """The verdict the notebook that judges ``same_as`` gave it (its record under ``figures_dir``), else NOT_JUDGED."""
    try:
        return referenced_row(same_as, dataset=DATASET, figures_dir=figures_dir)["verdict"]
    except FileNotFoundError:
        return NOT_JUDGED


def notebook_03_cell(matrix: Mapping[Cell, list[Experiment]], parameters: Mapping[str, Any]) -> Cell | None:
    """The cell whose networks are notebook 03's data runs (the same configs), if the matrix has one."""
    theirs = notebook_configs(parameters).data
    return next((cell for cell, experiments in matrix.items() if [e.config for e in experiments] == theirs), None)


def cell_claims(table: pd.DataFrame, matrix_cells: list[Cell], *, restated: Cell | None = None) -> dict[Cell, Claim]:
    """Per cell: IMP's masks are more local than random pruning's (RF-width ratio, IMP − random < 0).
    The ``restated`` cell (`notebook_03_cell`) is notebook 03's first row: shown, judged there."""
    return {
        cell: Claim("claim", f"{cell.label}: IMP more local than random (RF-width ratio, IMP − random)", "Fig. 1A, 4A",
                    per_cell(table, "imp_minus_random", cell), "less", MARGIN,
                    same_as=NOTEBOOK_03_ROW if cell == restated else None)
        for cell in matrix_cells
    }


def cause_claims(table: pd.DataFrame, matrix_cells: list[Cell]) -> list[Claim]:
    """The candidate causes, each a difference of IMP − random between two cells, paired by seed.

    At the smallest width: BatchNorm weakens localization (base task); the harder task
    strengthens it with BatchNorm. With the papers' width in the matrix: width weakens it
    (BatchNorm, base task); longer training strengthens it there. A cause whose cells are
    not in the matrix has no row.
    """
    present = set(matrix_cells)
    small = min(cell.width for cell in matrix_cells)
    candidates = [
        ("BatchNorm weakens localization", Cell(small, True, "base"), Cell(small, False, "base"), "greater"),
        ("the harder task strengthens it under BatchNorm", Cell(small, True, "harder"), Cell(small, True, "base"), "less"),
        ("the papers' width weakens it (BN, base task)", Cell(PAPERS_WIDTH, True, "base"), Cell(small, True, "base"), "greater"),
        ("longer training strengthens it at the papers' width (BN, base task)",
         Cell(PAPERS_WIDTH, True, "base", long=True), Cell(PAPERS_WIDTH, True, "base"), "less"),
    ]
    return [
        Claim("claim", f"{text}: IMP − random in [{a.label}] − in [{b.label}]", "—",
              per_cell(table, "imp_minus_random", a) - per_cell(table, "imp_minus_random", b), direction, MARGIN)
        for text, a, b, direction in candidates
        if a in present and b in present and a != b
    ]


def task_verdicts(judged: pd.DataFrame, claims: Mapping[Cell, Claim], *, figures_dir: str | os.PathLike | None) -> pd.DataFrame:
    """The pre-registered rule for the default task: one row per task, its IMP-vs-random verdict in each cell.

    A task qualifies as a default when the row holds in every cell of the task trained for
    the preset's steps (every width, BatchNorm off and on) *and* the papers' width is among
    them; ``qualifies`` is False when a verdict is not "holds", and None (undecided) when all
    hold but the papers' width was not run. A restated cell's verdict is the one its own
    notebook's record gives (`referenced_verdict`, under ``figures_dir``); without that record
    the cell reads "not judged here" and the task, if every other cell holds, is undecided.
    """
    verdict = dict(zip(judged.claim, judged.verdict))
    for claim in claims.values():
        if claim.same_as is not None:
            verdict[claim.claim] = referenced_verdict(claim.same_as, figures_dir)
    rows = []
    for task in dict.fromkeys(cell.task for cell in claims):
        mine = {cell: verdict[claim.claim] for cell, claim in claims.items() if cell.task == task and not cell.long}
        judged_here = [v for v in mine.values() if v != NOT_JUDGED]
        decided = len(judged_here) == len(mine) and any(cell.width == PAPERS_WIDTH for cell in mine)
        all_hold = all(v == "holds" for v in judged_here)
        rows.append({"task": task, **{cell.label.replace(f", {task} task", ""): v for cell, v in mine.items()},
                     "qualifies": (True if decided else None) if all_hold else False})
    return pd.DataFrame(rows).set_index("task")
