"""Presets: the notebooks' parameters as YAML files a user can read, copy and pass to papermill.

``papermill -f presets/NAME.yaml notebook.ipynb out.ipynb`` injects a preset. Every
notebook's ``parameters`` cell holds the ``default`` preset's values (a test checks it).
``notebook_configs`` turns a preset or a notebook's parameters into its experiments, after
``check_parameter_names`` has refused a name no notebook or preset knows (a misspelled
``-p step 200`` would otherwise train at the default scale).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imprf_utils.errors import ConfigError
from imprf_utils.output import REPOSITORY
from imprf_utils.training.config import ExperimentConfig

PRESETS_DIR = REPOSITORY / "presets"


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
    unknown = unknown_parameters(values)
    if unknown:
        raise ConfigError(f"preset {path}: {unknown}")
    return values


@functools.cache
def known_parameters() -> frozenset[str]:
    """Every parameter of the suite: the names of presets/*.yaml (every notebook's parameters are
    in presets/default.yaml, tests/test_notebooks.py checks it)."""
    return frozenset(name for path in PRESETS_DIR.glob("*.yaml") for name in yaml.safe_load(path.read_text()))


def unknown_parameters(names: Iterable[str]) -> str:
    """What is wrong with the names no notebook or preset knows, each with the closest known one; "" if none."""
    known = known_parameters()
    problems = []
    for name in dict.fromkeys(names):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "no notebook or preset has it (presets/default.yaml lists them all)"
            problems.append(f"unknown parameter {name!r}: {hint}")
    return "; ".join(problems)


PAPERMILL_CELL = "# Parameters\n"
"""The first line of the cell papermill injects after a notebook's parameters cell."""


def passed_parameters(namespace: Mapping[str, Any]) -> list[str]:
    """The names papermill passed to a notebook (``-p``, ``-y``, ``-f``), from the namespace of its kernel.

    They are the names its injected cell assigns, read from IPython's input history ``In``
    (the namespace holds the notebook's own variables too). [] for a mapping that is not a
    notebook's namespace (a preset), or a notebook run without papermill.
    """
    history = namespace.get("In")
    if not isinstance(history, list):
        return []
    return [
        target.id
        for source in history
        if isinstance(source, str) and source.startswith(PAPERMILL_CELL)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]


def check_parameter_names(parameters: Mapping[str, Any]) -> None:
    """Refuse a name passed to the notebook that no notebook or preset of the suite knows,
    naming the closest known one; names the suite knows but this notebook does not use pass
    silently (a preset passes them all)."""
    unknown = unknown_parameters(passed_parameters(parameters))
    if unknown:
        raise ConfigError(unknown)


LOCATIONS = frozenset({"preset", "run_store", "figures_dir", "data_dir"})
"""Parameters that say where things are, not what is computed: never reported as changed."""


def changed_parameters(parameters: Mapping[str, Any], preset: str) -> dict[str, Any] | None:
    """The parameters whose value differs from preset ``preset``'s (``-p steps 200`` on top of a
    preset), but for where files go (``LOCATIONS``); None when ``preset`` names no preset of
    the suite (a copied preset file's name: its values are unknown here).

    Call as ``changed_parameters(globals(), preset)`` in a notebook: the preset's names that
    the notebook holds are compared (as JSON values: a tuple equals its list).
    """
    if preset not in preset_names():
        return None

    def plain(value: Any) -> Any:
        return json.loads(json.dumps(value, default=str))

    return {
        name: plain(parameters[name])
        for name, value in load_preset(preset).items()
        if name in parameters and name not in LOCATIONS and plain(parameters[name]) != plain(value)
    }


def experiment_config(parameters: Mapping[str, Any], **changes: Any) -> ExperimentConfig:
    """The ExperimentConfig of a notebook's parameters (its other parameters are ignored).

    Call as ``experiment_config(globals(), seed=1)`` in a notebook: the fields of
    ExperimentConfig are taken from the parameters cell (after papermill's injection), after
    ``check_parameter_names``.
    """
    check_parameter_names(parameters)
    return _experiment_config(parameters, **changes)


def _experiment_config(parameters: Mapping[str, Any], **changes: Any) -> ExperimentConfig:
    fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
    values = {k: v for k, v in parameters.items() if k in fields}
    return ExperimentConfig.from_dict({**values, **changes})


@dataclass(frozen=True)
class NotebookConfigs:
    """The experiments of a notebook's parameters, one config per seed in each group."""

    data: list[ExperimentConfig]
    """The data: IMP, and oneshot and random pruning at ``compare_levels`` (notebooks 02-06)."""
    clone: list[ExperimentConfig]
    """The same seeds on the data's Gaussian clone, with oneshot and random at ``clone_compare_levels``."""
    superclasses: dict[str, list[ExperimentConfig]] = field(default_factory=dict)
    """Notebook 06: IMP only, on each grouping of ``superclass_groupings``."""
    train_fractions: dict[float, list[ExperimentConfig]] = field(default_factory=dict)
    """Notebook 06: IMP only, on each fraction < 1 of ``train_fractions`` (fraction 1 is ``data``)."""

    def all(self) -> list[ExperimentConfig]:
        groups = [self.data, self.clone, *self.superclasses.values(), *self.train_fractions.values()]
        return [config for group in groups for config in group]


def notebook_configs(
    parameters: Mapping[str, Any], *, seeds: Sequence[int] | None = None, ablations: bool = False, **changes: Any
) -> NotebookConfigs:
    """The experiments a notebook trains or reads, from its parameters or a preset: the one place they are built.

    Call as ``notebook_configs(globals())`` in a notebook (its ``seeds``; every field of
    ExperimentConfig from the parameters cell); ``run_sweep``'s ``preset_configs`` and the
    command line call it with a preset, so a sweep writes exactly the runs the notebooks
    then read. ``ablations``: notebook 06's groups too. ``changes`` override config fields
    in every group (e.g. ``data_dir``). The parameters are checked before anything runs.
    """
    parameters = {**parameters, **({} if seeds is None else {"seeds": list(seeds)})}
    check_notebook_parameters(parameters)

    def group(**variant: Any) -> list[ExperimentConfig]:
        return [_experiment_config(parameters, **changes, **variant, seed=seed) for seed in parameters["seeds"]]

    clone_levels = parameters.get("clone_compare_levels", parameters.get("compare_levels", ExperimentConfig.compare_levels))
    configs = NotebookConfigs(data=group(), clone=group(clone=True, compare_levels=clone_levels))
    if ablations:
        configs.superclasses.update({g: group(superclasses=g, compare_levels=[]) for g in parameters.get("superclass_groupings", [])})
        configs.train_fractions.update(
            {f: group(train_fraction=f, compare_levels=[]) for f in parameters.get("train_fractions", []) if f != 1}
        )
    return configs


def check_notebook_parameters(parameters: Mapping[str, Any]) -> None:
    """The notebook parameters that are not ExperimentConfig fields, checked before any work.

    First the names passed to the notebook (``check_parameter_names``). ``seeds``: a non-empty
    list of distinct integers >= 0. ``compare_levels`` (when the notebook has ``rounds``) must
    include ``rounds``: notebooks 03-06 compare IMP with oneshot and random pruning at the last
    round.
    """
    check_parameter_names(parameters)
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
