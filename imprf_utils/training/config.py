"""The experiment's config: every field, its type, default and section, written once.

``ExperimentConfig`` holds everything that determines an experiment's results (the run store
hashes all of it, ``imprf_utils.training.experiment.store_key``). Each field carries, as
dataclass metadata, its section in open_lth's vocabulary (``"data"``, ``"model"``,
``"training"``, ``"pruning"``) and what it expects, in words; its type is its annotation, and
the type check of ``__post_init__`` is derived from it (`type_check`). The fields stay one
flat dataclass: their names and values are the run store's keys.

It imports the data registry (dataset names and options) and nothing of training: presets
and notebooks build configs without the runner, the models or the run store.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imprf_utils.data import DATASETS, check_options
from imprf_utils.data.superclasses import check_superclasses
from imprf_utils.errors import ConfigError

PRECISIONS = ("fp32", "tf32", "bf16")
"""Matmul precisions of training (``imprf_utils.training.train``)."""
SECTIONS = ("data", "model", "training", "pruning")
"""The config's sections (field metadata "section"): what the data, the network, SGD and IMP are."""


def _field(section: str, expects: str, **default: Any) -> Any:
    """A config field of ``section`` whose value must be ``expects`` (in words, for the error message)."""
    return field(metadata={"section": section, "expects": expects}, **default)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines an experiment's results (the run store hashes all of it)."""

    dataset: str = _field("data", "a dataset name", default="skewed_texture")
    """Name for ``load_dataset``."""
    dataset_options: dict[str, Any] = _field("data", "a mapping of option names to values, e.g. {n: 1200}", default_factory=dict)
    """Options of the dataset (sizes, correlation lengths, ImageNet32 batches...)."""
    data_dir: str | None = _field("data", "None or a folder's path as a string", default=None)
    """Directory of a real dataset's files."""
    clone: bool = _field("data", "True or False", default=False)
    """Train and test on the class-conditional Gaussian clone of the data instead."""
    data_seed: int | None = _field("data", "None (each seed its own data) or an integer >= 0", default=None)
    """Fixes the generated data, the clone and the training subset. None (the default): the seed's
    own draw (``data_seed = seed``), so seeds vary the data as well as the network; a preset fixes
    it where the data cannot be redrawn (the photographs: their intervals cover networks only)."""
    seed: int = _field("training", "an integer >= 0 (one network's seed; a notebook's seeds are a list of them)", default=0)
    """Fixes the initialization, the batch order and the random masks."""
    hidden: tuple[int, ...] = _field("model", "a list of positive layer widths, e.g. [256, 256, 256]", default=(256, 256, 256))
    """Hidden-layer widths."""
    batchnorm: bool = _field("model", "True or False", default=False)
    """BatchNorm on each layer's input (Pellegrini & Biroli's network)."""
    lr: float = _field("training", "a number > 0", default=0.1)
    """Plain SGD learning rate."""
    batch_size: int = _field("training", "an integer > 0", default=256)
    """Images per SGD step, drawn with replacement (Pellegrini & Biroli)."""
    steps: int = _field("training", "an integer > 0", default=2000)
    """SGD steps per round (dense training and every retraining)."""
    rewind_step: int = _field("pruning", "an integer in [0, steps)", default=100)
    """Step whose weights the survivors are rewound to."""
    eval_every: int = _field("training", "an integer > 0", default=200)
    """Evaluate on the test set every so many steps."""
    prune_rate: float = _field("pruning", "a number strictly between 0 and 1", default=0.3)
    """Fraction of each hidden layer's remaining weights removed per IMP round."""
    rounds: int = _field("pruning", "an integer >= 0", default=10)
    """IMP rounds."""
    compare_levels: tuple[int, ...] = _field("pruning", "a list of IMP levels in 1..rounds, e.g. [4, 7, 10]", default=(4, 7, 10))
    """IMP levels at whose sparsity oneshot and random pruning are trained."""
    test_limit: int | None = _field("data", "None (all test images) or an integer > 0", default=None)
    """Evaluate on the first so many test images (P&B: 10,000); None: all."""
    train_fraction: float = _field("data", "a number in (0, 1]", default=1.0)
    """Train on this fraction of the training set (a random subset fixed by ``data_seed``; P&B: 0.3 vs 1)."""
    superclasses: str | None = _field("data", "None, 'mod<N>', 'semantic' or a mapping file's path", default=None)
    """Train and test on grouped labels: "mod<N>", "semantic" or a mapping file (see superclasses.py)."""
    precision: str = _field("training", f"one of {', '.join(PRECISIONS)}", default="fp32")
    """Matmul precision of training: "fp32", "tf32" (CUDA TF32 matmuls) or "bf16" (autocast); see train.py."""

    def __post_init__(self) -> None:
        """Refuse a config that cannot run, before any data or run directory exist.

        First the type of every field (papermill's ``-p`` passes a list as text: "[0, 1]"),
        then ranges and the relations between fields; each ConfigError names the field,
        the value it got and what it expects.
        """
        for name in ("hidden", "compare_levels"):  # a YAML or papermill list becomes a tuple
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for name, (accepts, expected) in _TYPE_CHECKS.items():
            value = getattr(self, name)
            if not accepts(value):
                raise ConfigError(_type_message(name, value, expected))
        if self.data_seed is None:  # each seed its own data
            object.__setattr__(self, "data_seed", self.seed)
        checks = [
            (self.dataset in DATASETS, f"dataset {self.dataset!r}: valid names are {', '.join(DATASETS)}"),
            (0.0 < self.prune_rate < 1.0, f"prune_rate {self.prune_rate}: must lie strictly between 0 and 1"),
            (self.rounds >= 0, f"rounds {self.rounds}: must be >= 0"),
            (self.steps > 0, f"steps {self.steps}: must be > 0"),
            (0 <= self.rewind_step < self.steps, f"rewind_step {self.rewind_step}: must lie in [0, steps={self.steps})"),
            (self.batch_size > 0, f"batch_size {self.batch_size}: must be > 0"),
            (self.lr > 0, f"lr {self.lr}: must be > 0"),
            (self.eval_every > 0, f"eval_every {self.eval_every}: must be > 0"),
            (len(self.hidden) > 0 and min(self.hidden) > 0, f"hidden {self.hidden}: need at least one layer, widths > 0"),
            (
                all(1 <= k <= self.rounds for k in self.compare_levels),
                f"compare_levels {self.compare_levels}: must lie in 1..rounds={self.rounds} "
                "(IMP levels whose sparsity oneshot and random pruning match); lower them or raise rounds",
            ),
            (
                len(set(self.compare_levels)) == len(self.compare_levels),
                f"compare_levels {self.compare_levels}: each level once",
            ),
            (min(self.seed, self.data_seed) >= 0, f"seed {self.seed}, data_seed {self.data_seed}: seeds must be integers >= 0"),
            (self.test_limit is None or self.test_limit > 0, f"test_limit {self.test_limit}: must be None (all test images) or > 0"),
            (0.0 < self.train_fraction <= 1.0, f"train_fraction {self.train_fraction}: must lie in (0, 1]"),
            (self.precision in PRECISIONS, f"precision {self.precision!r}: valid ones are {', '.join(PRECISIONS)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        check_options(self.dataset, self.dataset_options)  # unknown options, fewer than two classes
        check_superclasses(self.superclasses, self.dataset)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExperimentConfig:
        """Build from plain values (notebook parameters, YAML); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown experiment parameters {unknown}; valid ones: {sorted(names)}")
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def name(self) -> str:
        return self.dataset + ("-clone" if self.clone else "")

    @property
    def description(self) -> str:
        """The name, then what sets the run apart: the dataset's options, and the data fields and
        the network's shape and length that differ from their defaults, e.g.
        "skewed_texture (sigma=0.5, batchnorm=True)" or "skewed_texture (train_fraction=0.1)"."""
        defaults = config_defaults()
        shown = [name for name in (*DATA_FIELDS, "hidden", "batchnorm", "steps")
                 if name not in ("dataset", "clone", "dataset_options", "data_dir")]
        changed = [f"{key}={value}" for key, value in self.dataset_options.items()]
        changed += [
            f"{name}={getattr(self, name)}" for name in shown
            if getattr(self, name) != defaults[name] and not (name == "data_seed" and self.data_seed == self.seed)
        ]
        return self.name + (f" ({', '.join(changed)})" if changed else "")


def config_defaults() -> dict[str, Any]:
    """Every ExperimentConfig field's default value."""
    return {
        f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(ExperimentConfig)
    }


def section_fields(section: str) -> tuple[str, ...]:
    """The names of the config's fields in ``section`` (one of ``SECTIONS``), in field order."""
    if section not in SECTIONS:
        raise ValueError(f"section {section!r}: valid ones are {', '.join(SECTIONS)}")
    return tuple(f.name for f in dataclasses.fields(ExperimentConfig) if f.metadata["section"] == section)


DATA_FIELDS = section_fields("data")
"""The fields that determine the data (``load_data``); experiments equal in them share one copy."""


def _is_integer(value: Any) -> bool:
    """A Python int, not a bool (numpy integers are refused: the run store hashes the config as JSON)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite Python int or float (not a bool, NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_ACCEPTS: dict[type, Callable[[Any], bool]] = {
    bool: lambda v: isinstance(v, bool),
    int: _is_integer,
    float: _is_number,
    str: lambda v: isinstance(v, str),
    dict: lambda v: isinstance(v, dict),
}
"""What a value of each annotated type may be: an int is not a bool, a float is any finite int or float."""


def type_check(hint: Any) -> Callable[[Any], bool]:
    """Whether a value is of the annotation ``hint``: a type of ``_ACCEPTS``, ``dict[...]``,
    ``tuple[X, ...]`` (a tuple of X), or ``X | None``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        options = [type_check(arg) for arg in args if arg is not type(None)]
        nullable = type(None) in args
        return lambda v: (nullable and v is None) or any(accepts(v) for accepts in options)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = type_check(args[0])
        return lambda v: isinstance(v, tuple) and all(item(x) for x in v)
    return _ACCEPTS[origin or hint]


_TYPE_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    f.name: (type_check(typing.get_type_hints(ExperimentConfig)[f.name]), f.metadata["expects"])
    for f in dataclasses.fields(ExperimentConfig)
}
"""Each field of ExperimentConfig: (accepts its value's type, from its annotation; what it expects, in words)."""


def _type_message(name: str, value: Any, expected: str) -> str:
    """'name: got value (type), expected ...', and for text where a list or number belongs, how to pass it."""
    message = f"{name}: got {value!r} ({type(value).__name__}), expected {expected}"
    if isinstance(value, str):
        message += (
            "; papermill's -p passes anything but a number, True, False or None as text: pass lists and "
            'dicts with -y, e.g. -y "seeds: [0, 1]" or -y "hidden: [64, 64]", and numbers unquoted'
        )
    return message
