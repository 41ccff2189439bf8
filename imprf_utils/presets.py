"""Presets: the notebooks' parameters as YAML files a user can read, copy and pass to papermill.

``papermill -f presets/NAME.yaml notebook.ipynb out.ipynb`` injects a preset. Every
notebook's ``parameters`` cell holds the ``default`` preset's values (a test checks it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from imprf_utils.errors import ConfigError
from imprf_utils.experiment import ExperimentConfig

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load_preset(name: str | Path) -> dict[str, Any]:
    """The parameters of preset ``name`` (presets/NAME.yaml), or of a YAML file's path (a copied preset).

    An unknown name lists the valid ones.
    """
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = PRESETS_DIR / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(preset_names())} (or a YAML file's path)")
    elif not path.is_file():
        raise ConfigError(f"preset file {path} does not exist")
    values = yaml.safe_load(path.read_text())
    if not isinstance(values, dict):
        raise ConfigError(f"preset {path}: expected 'name: value' lines, got {type(values).__name__}")
    return values


def experiment_config(parameters: Mapping[str, Any], **changes: Any) -> ExperimentConfig:
    """The ExperimentConfig of a notebook's parameters (its other parameters are ignored).

    Call as ``experiment_config(globals(), seed=1)`` in a notebook: the fields of
    ExperimentConfig are taken from the parameters cell (after papermill's injection).
    """
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    values = {k: v for k, v in parameters.items() if k in fields}
    return ExperimentConfig.from_dict({**values, **changes})


def seed_configs(parameters: Mapping[str, Any], seeds: list[int], **changes: Any) -> list[ExperimentConfig]:
    """One ExperimentConfig per seed from a notebook's parameters, with ``changes`` applied.

    ``seed_configs(globals(), seeds, clone=True)``: the clone's runs of every seed (they
    train together as stacked replicas in ``run_experiments``).
    """
    check_notebook_parameters({**parameters, "seeds": seeds})
    return [experiment_config(parameters, seed=seed, **changes) for seed in seeds]


def check_notebook_parameters(parameters: Mapping[str, Any]) -> None:
    """The notebook parameters that are not ExperimentConfig fields, checked before any work.

    ``seeds``: a non-empty list of distinct integers >= 0. ``compare_levels`` (when the
    notebook has ``rounds``) must include ``rounds``: notebooks 03-06 compare IMP with oneshot
    and random pruning at the last round.
    """
    seeds = parameters.get("seeds")
    if not isinstance(seeds, (list, tuple)) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        hint = " (papermill -p passes text: give lists with -y, e.g. -y \"seeds: [0, 1]\")" if isinstance(seeds, str) else ""
        raise ConfigError(f"seeds: got {seeds!r}, expected a non-empty list of integers >= 0, e.g. [0, 1, 2, 3, 4]{hint}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: got {seeds!r}, expected distinct seeds (a repeated seed trains the same network twice)")
    levels, rounds = parameters.get("compare_levels"), parameters.get("rounds")
    if isinstance(levels, (list, tuple)) and isinstance(rounds, int) and rounds not in levels:
        raise ConfigError(
            f"compare_levels: got {list(levels)!r}, expected it to include rounds={rounds} "
            "(oneshot and random pruning are compared with IMP at the last round); add it, or lower rounds"
        )
