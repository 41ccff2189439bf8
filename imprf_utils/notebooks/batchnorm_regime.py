"""Notebook 08: under BatchNorm, which training regime still makes IMP choose local inputs?

Notebook 07 found that with BatchNorm random sparse masks train as well as IMP's, and IMP's
localization shrinks: nothing forces the network to choose its inputs. This module builds the
regimes that might restore that pressure and the pre-registered criterion that judges them.

- A **candidate** is a training regime with BatchNorm at the preset's width: the preset's
  settings with a few changed (``bn_candidates``, name -> changes of ExperimentConfig fields,
  e.g. ``{"lr": 0.4}``; ``"base"`` changes nothing). It trains the preset's seeds: dense,
  ``rounds`` IMP rounds, oneshot and random pruning at ``compare_levels``, through the run
  store, so a candidate equal to another notebook's runs (the photos tasks: notebook 03 on the
  ``photos_bn`` and ``photos32_bn`` presets) reads them back.
- A candidate **qualifies** when both its rows hold (`criterion_claims`): IMP's RF-width ratio
  lies more than ``LOCAL`` below random pruning's, and random masks' test accuracy more than
  ``PRESSURE`` below IMP's.
- The **wide cells** (`wide_configs`) train the base candidate and the best one (`best_candidate`)
  at ``bn_wide_width`` (the papers' 1024) with ``bn_wide_seeds``, oneshot and random at the last
  round only, and are judged by the same two rows.

Per network, `robustness.network_table` gives the measures and the descriptive columns
(ρ(removal round, rewind |W|), the first layer's relative weight change, compactness).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import pandas as pd

from imprf_utils.errors import ConfigError
from imprf_utils.notebooks.robustness import MARGIN, configs_of, experiments_of, network_table, per_cell
from imprf_utils.report.claims import Claim, judge
from imprf_utils.training.config import ExperimentConfig
from imprf_utils.training.presets import check_notebook_parameters, experiment_config
from imprf_utils.training.sweep import SweepSummary, run_sweep

LOCAL = 0.05
"""A qualifying regime's IMP − random RF-width ratio lies below −LOCAL (the bound, not the mean)."""
PRESSURE = 0.03
"""A qualifying regime's random masks are less accurate than IMP's by more than PRESSURE (the bound)."""
BASE = "base"
"""The candidate that changes nothing: the preset's task and training with BatchNorm."""


class Regime(NamedTuple):
    """A candidate regime at one hidden width."""

    name: str
    """The candidate's name, a key of ``bn_candidates``."""
    width: int
    """Width of every hidden layer."""

    @property
    def label(self) -> str:
        """E.g. "lr 0.4 (256)"."""
        return f"{self.name} ({self.width})"


def _check(parameters: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """The notebook's parameters checked before any work; its candidates."""
    check_notebook_parameters(parameters)
    candidates = parameters["bn_candidates"]
    if not isinstance(candidates, Mapping) or BASE not in candidates or candidates[BASE]:
        raise ConfigError(
            f"bn_candidates: got {candidates!r}, expected a mapping of names to changes of the preset's settings "
            f"with {BASE!r}: {{}} among them, e.g. {{'base': {{}}, 'lr 0.4': {{'lr': 0.4}}}}"
        )
    for name, changes in candidates.items():
        if not isinstance(changes, Mapping) or {"batchnorm", "seed", "hidden"} & set(changes):
            raise ConfigError(
                f"bn_candidates[{name!r}]: got {changes!r}, expected a mapping of config fields to values; every "
                "candidate trains with BatchNorm at the preset's width and seeds (bn_wide_width, bn_wide_seeds: the wide cells)"
            )
    return candidates


def _configs(parameters: Mapping[str, Any], regime: Regime, seeds: list[int], **changes: Any) -> list[ExperimentConfig]:
    """One config per seed: the preset's settings, BatchNorm, the regime's width and candidate's changes."""
    depth = len(parameters["hidden"])
    candidate = parameters["bn_candidates"][regime.name]
    return [
        experiment_config(parameters, batchnorm=True, hidden=[regime.width] * depth, **{**candidate, **changes}, seed=seed)
        for seed in seeds
    ]


def candidate_configs(parameters: Mapping[str, Any]) -> dict[Regime, list[ExperimentConfig]]:
    """Every candidate's configs at the preset's width (``hidden``'s first), one per seed of ``seeds``."""
    candidates = _check(parameters)
    width = parameters["hidden"][0]
    return {Regime(name, width): _configs(parameters, Regime(name, width), parameters["seeds"]) for name in candidates}


def wide_configs(parameters: Mapping[str, Any], best: str) -> dict[Regime, list[ExperimentConfig]]:
    """The wide cells: the base candidate and ``best`` at ``bn_wide_width``, seeds ``bn_wide_seeds``,
    oneshot and random pruning at the last round only."""
    _check(parameters)
    return {
        Regime(name, parameters["bn_wide_width"]): _configs(
            parameters, Regime(name, parameters["bn_wide_width"]), parameters["bn_wide_seeds"], compare_levels=[parameters["rounds"]]
        )
        for name in dict.fromkeys((BASE, best))
    }


def criterion_claims(table: pd.DataFrame, regimes: list[Regime]) -> dict[Regime, list[Claim]]:
    """Per regime, the pre-registered criterion's two rows over its networks (`robustness.network_table`):

    - claim: IMP localizes beyond LOCAL: (IMP − random RF-width ratio) + LOCAL < 0;
    - sanity check (pressure): random masks lose more than PRESSURE: (random − IMP accuracy) + PRESSURE < 0.
    """
    return {
        regime: [
            Claim("claim", f"{regime.label}: IMP localizes beyond {LOCAL}: RF-width ratio, IMP − random + {LOCAL}", "Fig. 1A, 4A",
                  per_cell(table, "imp_minus_random", regime) + LOCAL, "less", MARGIN),
            Claim("sanity check", f"{regime.label}: random masks lose more than {PRESSURE}: accuracy, random − IMP + {PRESSURE}", "—",
                  per_cell(table, "random_accuracy", regime) - per_cell(table, "imp_accuracy", regime) + PRESSURE,
                  "less", MARGIN),
        ]
        for regime in regimes
    }


def qualifying(judged: pd.DataFrame, claims: Mapping[Regime, list[Claim]]) -> pd.DataFrame:
    """One row per regime: the verdicts of its two rows and ``qualifies`` (both hold)."""
    verdict = dict(zip(judged.claim, judged.verdict))
    rows = [
        {"regime": regime.label, "localizes": verdict[local.claim], "pressure": verdict[pressure.claim],
         "qualifies": verdict[local.claim] == verdict[pressure.claim] == "holds"}
        for regime, (local, pressure) in claims.items()
    ]
    return pd.DataFrame(rows).set_index("regime")


def best_candidate(table: pd.DataFrame, qualified: pd.DataFrame, parameters: Mapping[str, Any]) -> str:
    """The candidate whose wide cell is trained, by the pre-registered rule.

    Eligible: the candidates that train at most ``bn_wide_steps_limit`` steps a round. Among the
    eligible ones that qualify, the one with the lowest mean IMP − random; if none qualifies, the
    eligible one with the most pressure (highest mean IMP − random accuracy). Ties: the first in
    ``bn_candidates``' order.
    """
    candidates = _check(parameters)
    limit = parameters["bn_wide_steps_limit"]
    eligible = [name for name, changes in candidates.items() if changes.get("steps", parameters["steps"]) <= limit]
    means = table.groupby("name", sort=False)[["imp_minus_random", "imp_accuracy", "random_accuracy"]].mean()
    labels = {name: Regime(name, parameters["hidden"][0]).label for name in eligible}
    winners = [name for name in eligible if bool(qualified.loc[labels[name], "qualifies"])]
    if winners:
        return min(winners, key=lambda name: means.loc[name, "imp_minus_random"])
    return max(eligible, key=lambda name: means.loc[name, "imp_accuracy"] - means.loc[name, "random_accuracy"])


def chosen_candidate(parameters: Mapping[str, Any], candidates: Mapping[Regime, list[Any]]) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """From the candidates' experiments: their network table, which qualify (their rows judged among
    themselves, Holm across them) and the best candidate (`best_candidate`), as notebook 08 computes them."""
    table = network_table(candidates)
    claims = criterion_claims(table, list(candidates))
    qualified = qualifying(judge([claim for rows in claims.values() for claim in rows]), claims)
    return table, qualified, best_candidate(table, qualified, parameters)


def stored_wide_configs(parameters: Mapping[str, Any], run_store: str | os.PathLike) -> dict[Regime, list[ExperimentConfig]]:
    """``wide_configs`` for the best candidate that the candidates stored in ``run_store`` pick."""
    return wide_configs(parameters, chosen_candidate(parameters, experiments_of(candidate_configs(parameters), run_store))[2])


def sweep_regimes(
    parameters: Mapping[str, Any], executor: Any = None, *, run_store: str | os.PathLike, device: str = "auto",
    threads: int | None = None,
) -> list[SweepSummary]:
    """The candidates, then (when none failed) the wide cells of the best one, through ``run_sweep``'s ``executor``.

    What ``python -m imprf_utils sweep --bn-regime`` runs: notebook 08 then reads every run from the store.
    """
    candidates = configs_of(candidate_configs(parameters))
    summaries = [run_sweep(candidates, executor, run_store=run_store, device=device, threads=threads)]
    if not summaries[0].failed:
        wide = configs_of(stored_wide_configs(parameters, run_store))
        summaries.append(run_sweep(wide, executor, run_store=run_store, device=device, threads=threads))
    return summaries
