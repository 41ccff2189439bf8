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
