"""The networks a notebook reads, as tables: one row per network (data, seed), one value per seed for a claim.

``notebook_runs`` is the setup of the notebooks that read notebook 03's runs (04, 05): the data
and clone experiments of the notebook's parameters, run or read back once, with the context of
its figures (``report.figure_files.FigureContext``). Every table names
its network by ``network_columns`` (``data``: "data"/"clone", ``seed``); ``per_experiment``
stacks a per-experiment table over experiments; ``per_seed`` picks a claim's per-network values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from imprf_utils.report.figure_files import FigureContext
from imprf_utils.training.experiment import DENSE, Experiment
from imprf_utils.training.presets import notebook_configs
from imprf_utils.training.runner import run_experiments


@dataclass(frozen=True)
class NotebookRuns:
    """A notebook's experiments, read from (or trained into) the run store, and its figures' context."""

    data: list[Experiment]
    """One experiment per seed on the data, in the order of ``seeds``."""
    clone: list[Experiment]
    """The same seeds on the data's Gaussian clone (oneshot and random at ``clone_compare_levels``)."""
    figures: FigureContext
    """Where the figures and the claims record go (``figures.root`` / ``figures.dataset``, the data's name)
    and what each figure carries: the preset, the seeds, the notebook, and as parameters the seeds and
    the first data config."""

    @property
    def experiments(self) -> list[Experiment]:
        return self.data + self.clone


NOTEBOOK_PARAMETERS = ("preset", "seeds", "clone_compare_levels", "run_store", "device", "figures_dir")


def notebook_runs(parameters: Mapping[str, Any], notebook: str) -> NotebookRuns:
    """The data and clone experiments of a notebook's parameters, run (or read back) once, and the
    context of its figures.

    Call as ``runs = notebook_runs(globals(), "04")`` after the parameters cell (``notebook``: its
    two-digit number): every field of ExperimentConfig comes from the parameters
    (``presets.notebook_configs``), one experiment per entry of ``seeds``, and the same seeds on the
    Gaussian clone with oneshot and random pruning at ``clone_compare_levels``. Stages the run store
    (``run_store``; None: the default store) already holds are read, not trained.
    """
    missing = [name for name in NOTEBOOK_PARAMETERS if name not in parameters]
    if missing:
        raise KeyError(f"notebook_runs: the parameters lack {missing}; the notebook's parameters cell must define {list(NOTEBOOK_PARAMETERS)}")
    configs = notebook_configs(parameters)
    experiments = run_experiments(configs.data + configs.clone, run_store=parameters["run_store"], device=parameters["device"])
    seeds = len(configs.data)
    params = {"seeds": list(parameters["seeds"]), **configs.data[0].as_dict()}
    return NotebookRuns(
        data=experiments[:seeds],
        clone=experiments[seeds:],
        figures=FigureContext.of(parameters, notebook, experiments[0].data[0].name, params),
    )


# --------------------------------------------------------------------------------------
# Per-network effects: the values of a claim (one per seed)
# --------------------------------------------------------------------------------------


def _rows_where(table: pd.DataFrame, where: Mapping[str, Any], caller: str) -> pd.DataFrame:
    """The rows of ``table`` where every ``where`` column equals its value; an error names what is there."""
    unknown = [name for name in (*where, "seed") if name not in table.columns]
    if unknown:
        raise KeyError(f"{caller}: no column {unknown}; the table has {list(table.columns)}")
    selected = table
    for name, value in where.items():
        selected = selected[selected[name] == value]
    if selected.empty:
        present = {name: sorted(table[name].unique().tolist()) for name in where}
        raise ValueError(f"{caller}: no rows with {dict(where)}; the table holds {present}")
    return selected


def per_seed(table: pd.DataFrame, column: str, *, agg: str | None = None, **where: Any) -> pd.Series:
    """One value of ``column`` per network (seed), for a claim's per-network effects.

    The rows where every ``where`` column equals its value (e.g. ``method="imp",
    data="data", level=10``), grouped by ``seed``; each seed must then hold exactly one
    row, unless ``agg`` ("mean", "max", "min", ...) says how to reduce its rows (NaN
    values are skipped). Returns a Series indexed by seed, so that differences of two
    selections pair the networks by seed (a seed missing on one side gives NaN).
    """
    if column not in table.columns:
        raise KeyError(f"per_seed: no column {column!r}; the table has {list(table.columns)}")
    groups = _rows_where(table, where, "per_seed").groupby("seed", sort=True)[column]
    if agg is None:
        counts = groups.size()
        if (counts != 1).any():
            raise ValueError(
                f"per_seed: {column!r} with {where} has {counts.max()} rows for a seed; "
                "narrow the selection (e.g. data=, method=, level=) or pass agg= to reduce them"
            )
        return groups.first().rename(column)
    return groups.agg(agg).rename(column)


def per_seed_spearman(table: pd.DataFrame, x: str, y: str, **where: Any) -> pd.Series:
    """Spearman rank correlation of columns ``x`` and ``y`` within each network (seed).

    ρ = Pearson correlation of the ranks (average ranks for ties), over the rows where
    every ``where`` column equals its value; NaN for a seed whose x or y is constant.
    Returns a Series indexed by seed.
    """
    selected = _rows_where(table, where, "per_seed_spearman")
    return selected.groupby("seed", sort=True)[[x, y]].apply(lambda g: g[x].corr(g[y], method="spearman")).rename(f"rho_{x}_{y}")


def network_columns(exp: Experiment) -> dict[str, Any]:
    """The columns that name a network in every table: ``data`` ("data"/"clone") and ``seed``."""
    return {"data": "clone" if exp.config.clone else "data", "seed": exp.config.seed}


def first_layer(exp: Experiment, level: tuple[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked first-layer weights (units, D) and mask of a level."""
    model = exp.model(level)
    mask = model.masks[0][0]
    return model.weights[0][0].detach() * mask, mask


@torch.no_grad()
def first_layer_inputs(exp: Experiment, level: tuple[str, int], limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """What the first Linear map sees on the test set (after BatchNorm, if any), and labels."""
    data = exp.test_inputs(limit)
    return exp.model(level).layer_input(data.inputs(slice(None)), 0)[0], data.y


def per_experiment(table: Callable[..., pd.DataFrame], experiments: list[Experiment], **kwargs) -> pd.DataFrame:
    """``table(exp, **kwargs)`` of several experiments stacked, with columns ``data`` ("data"/"clone") and ``seed``."""
    tables = []
    for exp in experiments:
        rows = table(exp, **kwargs)
        for i, (name, value) in enumerate(network_columns(exp).items()):
            rows.insert(i, name, value)
        tables.append(rows)
    return pd.concat(tables, ignore_index=True)


def learning_curves(experiments: list[Experiment], level: tuple[str, int] = DENSE) -> pd.DataFrame:
    """The stored learning curve of ``level`` of each experiment, one row per evaluation.

    Columns: data ("data"/"clone"), seed, step, train_loss (mean since the previous
    evaluation), test_accuracy.
    """
    tables = []
    for exp in experiments:
        m = exp.metrics(level)
        tables.append(pd.DataFrame({
            **network_columns(exp),
            "step": m["steps"],
            "train_loss": m["train_loss"],
            "test_accuracy": m["test_accuracy"],
        }))
    return pd.concat(tables, ignore_index=True)
