"""One experiment: dense training, IMP rounds, and oneshot / random pruning at IMP's sparsities.

``run_experiment(config)`` does every stage that the run store does not hold yet and
returns the :class:`Experiment` that reads them back. The stages:

- ("imp", 0): train the dense network for ``steps``; keep its state at ``rewind_step``;
- ("imp", k): prune ``prune_rate`` of each hidden layer's remaining weights of ("imp", k-1)'s
  final weights, rewind the survivors to the rewind state, retrain to ``steps``;
- ("oneshot", k): prune the dense network's final weights once to ("imp", k)'s per-layer
  counts, rewind, retrain;
- ("random", k): random masks with ("imp", k)'s per-layer counts, rewind, retrain.

A network is named by its :class:`Level` ``(method, k)``; ``Level.directory`` is the one
place that names its directory in the run store.

All oneshot and random networks start from the same rewind state and see the same
batches, so they train together as stacked replicas.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
import functools
from typing import Any, NamedTuple

import torch

from imprf_utils.data import CLONE_VERSION, DATASETS, RECIPE_VERSIONS, Dataset, check_options, clone_splits, load_dataset
from imprf_utils.errors import ConfigError
from imprf_utils.output import DEFAULT_RUN_STORE
from imprf_utils.models import MaskedFCN, replica_state, stack_states
from imprf_utils.pruning import kept_fraction, magnitude_masks, random_masks, removal_round, top_magnitude_masks
from imprf_utils.store import Run
from imprf_utils.data.superclasses import apply_superclasses, check_superclasses, superclass_mapping
from imprf_utils.train import PRECISIONS, DeviceData, train

METHODS = ("imp", "oneshot", "random")


class Level(NamedTuple):
    """One trained network of an experiment: ``method`` at the sparsity of ``k`` IMP rounds.

    ``("imp", 0)`` is the dense network; any ``(method, k)`` tuple is accepted where a
    Level is expected.
    """

    method: str
    """"imp", "oneshot" or "random" (``METHODS``)."""
    k: int
    """IMP rounds whose sparsity the network has."""

    @property
    def directory(self) -> str:
        """Its directory in the run store: ``level_k`` for IMP, ``oneshot_k`` / ``random_k`` otherwise."""
        if self.method not in METHODS:
            raise ValueError(f"level {tuple(self)}: the method must be one of {', '.join(METHODS)}")
        return f"level_{self.k}" if self.method == "imp" else f"{self.method}_{self.k}"


DENSE = Level("imp", 0)


DATA = {"data": True}
"""Field metadata of the config fields that determine the data (``load_data``); experiments equal in them share one copy."""


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines an experiment's results (the run store hashes all of it)."""

    dataset: str = field(default="skewed_texture", metadata=DATA)
    """Name for ``load_dataset``."""
    dataset_options: dict[str, Any] = field(default_factory=dict, metadata=DATA)
    """Options of the dataset (sizes, correlation lengths, ImageNet32 batches...)."""
    data_dir: str | None = field(default=None, metadata=DATA)
    """Directory of a real dataset's files."""
    clone: bool = field(default=False, metadata=DATA)
    """Train and test on the class-conditional Gaussian clone of the data instead."""
    data_seed: int | None = field(default=None, metadata=DATA)
    """Fixes the generated data, the clone and the training subset. None (the default): the seed's
    own draw (``data_seed = seed``), so seeds vary the data as well as the network; a preset fixes
    it where the data cannot be redrawn (the photographs: their intervals cover networks only)."""
    seed: int = 0
    """Fixes the initialization, the batch order and the random masks."""
    hidden: tuple[int, ...] = (256, 256, 256)
    """Hidden-layer widths."""
    batchnorm: bool = False
    """BatchNorm on each layer's input (Pellegrini & Biroli's network)."""
    lr: float = 0.1
    """Plain SGD learning rate."""
    batch_size: int = 256
    """Images per SGD step, drawn with replacement (Pellegrini & Biroli)."""
    steps: int = 2000
    """SGD steps per round (dense training and every retraining)."""
    rewind_step: int = 100
    """Step whose weights the survivors are rewound to."""
    eval_every: int = 200
    """Evaluate on the test set every so many steps."""
    prune_rate: float = 0.3
    """Fraction of each hidden layer's remaining weights removed per IMP round."""
    rounds: int = 10
    """IMP rounds."""
    compare_levels: tuple[int, ...] = (4, 7, 10)
    """IMP levels at whose sparsity oneshot and random pruning are trained."""
    test_limit: int | None = field(default=None, metadata=DATA)
    """Evaluate on the first so many test images (P&B: 10,000); None: all."""
    train_fraction: float = field(default=1.0, metadata=DATA)
    """Train on this fraction of the training set (a random subset fixed by ``data_seed``; P&B: 0.3 vs 1)."""
    superclasses: str | None = field(default=None, metadata=DATA)
    """Train and test on grouped labels: "mod<N>", "semantic" or a mapping file (see superclasses.py)."""
    precision: str = "fp32"
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
        for name, (accepts, expected) in _FIELD_TYPES.items():
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


def _is_integer(value: Any) -> bool:
    """A Python int, not a bool (numpy integers are refused: the run store hashes the config as JSON)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite Python int or float (not a bool, NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(_is_integer(v) for v in value)


_FIELD_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "dataset": (lambda v: isinstance(v, str), "a dataset name"),
    "dataset_options": (lambda v: isinstance(v, dict), "a mapping of option names to values, e.g. {n: 1200}"),
    "data_dir": (lambda v: v is None or isinstance(v, str), "None or a folder's path as a string"),
    "clone": (lambda v: isinstance(v, bool), "True or False"),
    "data_seed": (lambda v: v is None or _is_integer(v), "None (each seed its own data) or an integer >= 0"),
    "seed": (_is_integer, "an integer >= 0 (one network's seed; a notebook's seeds are a list of them)"),
    "hidden": (_is_integer_tuple, "a list of positive layer widths, e.g. [256, 256, 256]"),
    "batchnorm": (lambda v: isinstance(v, bool), "True or False"),
    "lr": (_is_number, "a number > 0"),
    "batch_size": (_is_integer, "an integer > 0"),
    "steps": (_is_integer, "an integer > 0"),
    "rewind_step": (_is_integer, "an integer in [0, steps)"),
    "eval_every": (_is_integer, "an integer > 0"),
    "prune_rate": (_is_number, "a number strictly between 0 and 1"),
    "rounds": (_is_integer, "an integer >= 0"),
    "compare_levels": (_is_integer_tuple, "a list of IMP levels in 1..rounds, e.g. [4, 7, 10]"),
    "test_limit": (lambda v: v is None or _is_integer(v), "None (all test images) or an integer > 0"),
    "train_fraction": (_is_number, "a number in (0, 1]"),
    "superclasses": (lambda v: v is None or isinstance(v, str), "None, 'mod<N>', 'semantic' or a mapping file's path"),
    "precision": (lambda v: isinstance(v, str), f"one of {', '.join(PRECISIONS)}"),
}
"""Each field of ExperimentConfig: (accepts its value's type, what it expects, in words)."""


def _type_message(name: str, value: Any, expected: str) -> str:
    """'name: got value (type), expected ...', and for text where a list or number belongs, how to pass it."""
    message = f"{name}: got {value!r} ({type(value).__name__}), expected {expected}"
    if isinstance(value, str):
        message += (
            "; papermill's -p passes anything but a number, True, False or None as text: pass lists and "
            'dicts with -y, e.g. -y "seeds: [0, 1]" or -y "hidden: [64, 64]", and numbers unquoted'
        )
    return message


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


DATA_FIELDS = tuple(f.name for f in dataclasses.fields(ExperimentConfig) if f.metadata.get("data"))


def load_data(config: ExperimentConfig) -> tuple[Dataset, Dataset]:
    """Train and test sets of the config, in this order of steps:

    1. the dataset's splits; the first ``test_limit`` test images;
    2. a random ``train_fraction`` of the training images (fixed by ``data_seed``);
    3. the clone of both splits (``data.clone_splits``): from the task's exact class moments
       where the generator knows them, else from two independent halves of the training images;
    4. superclasses: the labels grouped (the clone keeps the original classes' statistics).

    Experiments that share their data fields (e.g. seeds) share one copy: the last two
    datasets loaded are kept.
    """
    return _load_data(data_key(config))


def data_key(config: ExperimentConfig) -> str:
    """What fixes a config's train and test sets: its ``DATA_FIELDS``, as sorted JSON."""
    return json.dumps({f: getattr(config, f) for f in DATA_FIELDS}, sort_keys=True)


@functools.lru_cache(maxsize=2)
def _load_data(key: str) -> tuple[Dataset, Dataset]:
    config = ExperimentConfig(**json.loads(key))
    kwargs = dict(data_dir=config.data_dir, seed=config.data_seed, **config.dataset_options)
    train_ds = load_dataset(config.dataset, split="train", **kwargs)
    test_ds = load_dataset(config.dataset, split="test", **kwargs)
    if config.test_limit is not None:
        test_ds = test_ds.subset(torch.arange(min(config.test_limit, len(test_ds))))
    if config.train_fraction < 1.0:
        generator = torch.Generator().manual_seed(config.data_seed)
        keep = torch.randperm(len(train_ds), generator=generator)[: round(config.train_fraction * len(train_ds))]
        train_ds = train_ds.subset(keep.sort().values)
    if config.clone:
        train_ds, test_ds = clone_splits(config.dataset, train_ds, test_ds, seed=config.data_seed, **config.dataset_options)
    if config.superclasses is not None:
        mapping, names = superclass_mapping(config.superclasses, config.dataset, train_ds.num_classes)
        train_ds, test_ds = (apply_superclasses(ds, mapping, names) for ds in (train_ds, test_ds))
    return train_ds, test_ds


def store_key(config: ExperimentConfig) -> dict[str, Any]:
    """What the run store hashes: the config, for a clone run the version of the clone's recipe, and
    for a dataset whose recipe changed (``data.RECIPE_VERSIONS``) the version of its recipe.

    ``CLONE_VERSION`` (``data.clone_splits``): runs of an older recipe are not reused; at data seed 0
    versions 2 and 3 draw the same bits, so those runs keep their version-2 key. ``photos`` 2: the
    window scramble and the test clone from the test photographs; its version-1 runs are not
    reused. Other datasets' keys are unchanged.
    """
    recipe = {"recipe_version": RECIPE_VERSIONS[config.dataset]} if config.dataset in RECIPE_VERSIONS else {}
    clone_version = 2 if config.data_seed == 0 else CLONE_VERSION
    return {**config.as_dict(), **({"clone_version": clone_version} if config.clone else {}), **recipe}


class Experiment:
    """Reads an experiment's levels back from the run store."""

    def __init__(self, config: ExperimentConfig, run_store: str | os.PathLike = DEFAULT_RUN_STORE):
        self.config = config
        self.run = Run(run_store, config.name, store_key(config))
        self._widths: tuple[int, ...] | None = None

    @property
    def data(self) -> tuple[Dataset, Dataset]:
        return load_data(self.config)

    def widths(self) -> tuple[int, ...]:
        """The network's layer widths (inputs, hidden, classes), read from the data once."""
        if self._widths is None:
            train_ds = self.data[0]
            self._widths = (train_ds.x[0].numel(), *self.config.hidden, train_ds.num_classes)
        return self._widths

    def levels(self, method: str) -> list[Level]:
        """The levels of a method ("imp", "oneshot", "random") in a full run, in order of sparsity."""
        ks = range(self.config.rounds + 1) if method == "imp" else self.config.compare_levels
        return [Level(method, k) for k in ks]

    def has(self, level: tuple[str, int]) -> bool:
        return self.run.has(Level(*level).directory)

    def stored_levels(self) -> list[Level]:
        """Every level the run store holds, by method, then sparsity."""
        return [level for m in METHODS for level in self.levels(m) if self.has(level)]

    def missing_levels(self, dense_only: bool = False) -> list[Level]:
        """Levels of the full run (IMP, oneshot, random), or with ``dense_only`` of the dense
        level alone, that the run store does not hold yet."""
        levels = [DENSE] if dense_only else [level for m in METHODS for level in self.levels(m)]
        return [level for level in levels if not self.has(level)]

    def load(self, level: tuple[str, int], stem: str) -> dict[str, torch.Tensor]:
        """A stored state dict of a level: "state", "masks", or "rewind" (the dense level only)."""
        return self.run.load(Level(*level).directory, stem)

    def masks(self, level: tuple[str, int]) -> list[torch.Tensor]:
        stored = self.load(level, "masks")
        return [stored[f"mask{layer}"][0] for layer in range(len(stored))]

    def model(self, level: tuple[str, int]) -> MaskedFCN:
        """The trained network of a level, on the CPU, in eval mode."""
        return self.build_model(self.load(level, "state"), self.load(level, "masks")).eval()

    def rewind_model(self, level: tuple[str, int]) -> MaskedFCN:
        """The rewind state θ(t_rewind) under the masks of ``level``, on the CPU, in eval mode.

        With ``level = ("imp", n - 1)`` this is the network θ(t_rewind) ⊙ m(n−1) that IMP
        round n starts from (Redman et al. Fig. 5C computes its cavity scores).
        """
        return self.build_model(self.load(DENSE, "rewind"), self.load(level, "masks")).eval()

    def metrics(self, level: tuple[str, int]) -> dict[str, Any]:
        return self.run.metrics(Level(*level).directory)

    def test_inputs(self, samples: int | slice | None = None) -> DeviceData:
        """The test images ``samples`` (an int: the first so many; a slice: those rows; None: all)
        as the network's input, on the CPU (centred by the training set's mean)."""
        train_ds, test_ds = self.data
        if samples is not None:
            test_ds = test_ds.subset(slice(0, samples) if isinstance(samples, int) else samples)
        return DeviceData.from_dataset(test_ds, "cpu", mean=train_ds.mean)

    def removal_round(self, layer: int = 0) -> torch.Tensor:
        """IMP round that removed each weight of ``layer`` (``rounds + 1`` for survivors)."""
        return removal_round([self.masks(level)[layer] for level in self.levels("imp")])

    def build_model(self, state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> MaskedFCN:
        """A network of this experiment's shape holding a stored (possibly stacked) state and masks."""
        k = next(iter(state.values())).shape[0]
        model = MaskedFCN(self.widths(), seeds=[self.config.seed] * k, batchnorm=self.config.batchnorm)
        model.load_state_dict({**state, **{name: m.expand(k, -1, -1) for name, m in masks.items()}})
        return model


def seed_group(config: ExperimentConfig) -> str:
    """The key shared by configs that may train together as stacked replicas: equal but for
    ``seed``, ``compare_levels`` and the data (``DATA_FIELDS``), so a dataset's seeds, its
    Gaussian clone's, its superclass groupings' or another task's of the same layout train as
    one model (each at its own compare levels); `stacked_parts` splits it by data layout."""
    return json.dumps({**config.as_dict(), "seed": None, "compare_levels": None, **dict.fromkeys(DATA_FIELDS)}, sort_keys=True)


def stacked_parts(group: list[Experiment]) -> list[list[Experiment]]:
    """A seed group split into the parts that train as one model: the experiments whose images
    share their shape, dtype and classes (`DeviceData.can_concat`) and whose test sets their
    size (training sets may differ: notebook 06's fractions), each part's datasets in order of
    first appearance, the data's before its clone's."""
    parts: dict[tuple, list[Experiment]] = {}
    for exp in sorted(group, key=lambda e: e.config.clone):
        train_ds, test_ds = exp.data
        parts.setdefault((DeviceData.layout(train_ds), DeviceData.layout(test_ds), len(test_ds)), []).append(exp)
    return list(parts.values())


def run_experiment(
    config: ExperimentConfig,
    *,
    run_store: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
) -> Experiment:
    """Run every stage of ``config`` not yet in the run store; return the experiment."""
    return run_experiments([config], run_store=run_store, device=device)[0]


def run_experiments(
    configs: Sequence[ExperimentConfig],
    *,
    run_store: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    dense_only: bool = False,
) -> list[Experiment]:
    """Run several experiments; configs equal but for ``seed``, ``compare_levels`` and the data train together as replicas.

    Each (seed, data) keeps its own run directory, initialization, batch order and random
    masks; datasets of one layout (the data and its clone, superclass groupings, tasks of one
    size: `stacked_parts`) sit side by side on the device and each replica reads its own
    (``train``'s ``replica_sets``). Stacking only shares the matrix products: the bits are
    those of one-at-a-time training. ``dense_only``: stop after level 0 (the dense network
    and its rewind state), in the same run directory, so a later full run reuses it.
    ``run_store`` None: ``DEFAULT_RUN_STORE`` (runs/ in the repository, or $IMPRF_RUN_STORE).
    Returns the experiments in the order of ``configs``.
    """
    run_store = DEFAULT_RUN_STORE if run_store is None else run_store
    experiments = [Experiment(cfg, run_store) for cfg in configs]
    groups: dict[str, list[Experiment]] = {}
    for exp in experiments:
        groups.setdefault(seed_group(exp.config), []).append(exp)
    for group in groups.values():
        _run_group(group, resolve_device(device), dense_only)
    return experiments


def _run_group(group: list[Experiment], device: torch.device, dense_only: bool = False) -> None:
    with ExitStack() as stack:
        for exp in sorted(group, key=lambda e: str(e.run.path)):  # a fixed order: no deadlock
            stack.enter_context(exp.run.lock())
            exp.run.clean_partial()
        pending = [exp for exp in group if exp.missing_levels(dense_only)]
        for part in stacked_parts(pending):  # none if the store holds everything
            stages = _Stages(part, device)
            stages.dense()
            if not dense_only:
                for k in range(1, part[0].config.rounds + 1):
                    stages.imp_round(k)
                stages.oneshot_and_random()


def _joint_description(configs: list[ExperimentConfig]) -> str:
    """The progress name of datasets trained together: "skewed_texture and its clone",
    "skewed_texture (superclasses=semantic) and skewed_texture (superclasses=mod2)"."""
    first, *others = configs
    clone = data_key(dataclasses.replace(first, clone=True))
    return first.description + "".join(
        " and its clone" if data_key(other) == clone else f" and {other.description}" for other in others
    )


class _Stages:
    """The stages of a group of experiments differing only in seed, compare_levels and data of one layout, each stage one stacked training.

    The group's datasets (the data, its clone, superclass groupings...) sit side by side on
    the device (``DeviceData.concat``); replica r trains and is scored on its experiment's set.
    """

    def __init__(self, group: list[Experiment], device: torch.device):
        self.group, self.cfg, self.device = group, group[0].config, device
        firsts = {data_key(exp.config): exp for exp in reversed(group)}  # each dataset's first experiment
        self.sets = list(dict.fromkeys(data_key(exp.config) for exp in group))  # set s holds the data of sets[s]
        pairs = [firsts[key].data for key in self.sets]
        self.train_data = DeviceData.concat([train_ds for train_ds, _ in pairs], device)
        self.test_data = DeviceData.concat([test_ds for _, test_ds in pairs], device, means=self.train_data.mean)
        self.description = _joint_description([firsts[key].config for key in self.sets])

    def _train(self, model: MaskedFCN, replicas: list[Experiment], start_step: int, description: str, rewind: bool = False):
        """Train ``model``'s replicas, replica r with ``replicas[r]``'s seed and on its set."""
        seeds = [exp.config.seed for exp in replicas]
        return train(
            model.to(self.device),
            self.train_data,
            self.test_data,
            steps=self.cfg.steps,
            batch_size=self.cfg.batch_size,
            lr=self.cfg.lr,
            batch_seeds=seeds,
            replica_sets=[self.sets.index(data_key(exp.config)) for exp in replicas] if len(self.sets) > 1 else None,
            eval_every=self.cfg.eval_every,
            start_step=start_step,
            rewind_step=self.cfg.rewind_step if rewind else None,
            precision=self.cfg.precision,
            description=f"{self.description} seeds {sorted(set(seeds))}: {description}",
        )

    def _rewound(self, replicas: list[tuple[Experiment, list[torch.Tensor]]]) -> MaskedFCN:
        """One replica per (experiment, masks): its rewind state, masks applied, BN statistics reset (P&B)."""
        state = stack_states([exp.load(DENSE, "rewind") for exp, _ in replicas])
        for name in state:
            if name.startswith("running_mean"):
                state[name].zero_()
            elif name.startswith("running_var"):
                state[name].fill_(1.0)
        model = replicas[0][0].build_model(state, replicas[0][0].load(DENSE, "masks"))
        model.set_masks([torch.stack(layer) for layer in zip(*(masks for _, masks in replicas))])
        return model

    @staticmethod
    def _save(exp: Experiment, level: Level, model: MaskedFCN, result, k: int, rewind=None) -> None:
        sd = model.state_dict()
        masks = {name: t[k : k + 1] for name, t in sd.items() if name.startswith("mask")}
        state = replica_state({n: t for n, t in sd.items() if not n.startswith("mask")}, k)
        acc = result.test_accuracy[:, k]
        mask_list = [m[0] for m in masks.values()]
        metrics = {
            "steps": result.steps,
            "train_loss": result.train_loss[:, k].tolist(),
            "test_accuracy": acc.tolist(),
            "final_accuracy": float(acc[-1]),
            "best_accuracy": float(acc.max()),
            "kept_fraction": kept_fraction(mask_list),
            "layer_kept_fraction": [float(m.float().mean()) for m in mask_list],
        }
        tensors = {"state": state, "masks": masks}
        if rewind is not None:
            tensors["rewind"] = replica_state({n: t for n, t in rewind.items() if not n.startswith("mask")}, k)
        exp.run.save(level.directory, tensors, metrics)

    def dense(self) -> None:
        todo = [exp for exp in self.group if not exp.has(DENSE)]
        if not todo:
            return
        model = MaskedFCN(todo[0].widths(), seeds=[exp.config.seed for exp in todo], batchnorm=self.cfg.batchnorm)
        result = self._train(model, todo, 0, "dense", rewind=True)
        for k, exp in enumerate(todo):
            self._save(exp, DENSE, model, result, k, rewind=result.rewind_state)

    def imp_round(self, k: int) -> None:
        todo = [exp for exp in self.group if not exp.has(("imp", k))]
        if not todo:
            return
        replicas = []
        for exp in todo:
            previous = exp.model(("imp", k - 1))
            weights = [w[0] for w in previous.weights[:-1]]
            replicas.append((exp, magnitude_masks(weights, [m[0] for m in previous.masks], self.cfg.prune_rate)))
        model = self._rewound(replicas)
        result = self._train(model, todo, self.cfg.rewind_step, f"IMP round {k}/{self.cfg.rounds}")
        for i, exp in enumerate(todo):
            self._save(exp, Level("imp", k), model, result, i)

    def oneshot_and_random(self) -> None:
        """All oneshot and random networks of the group, as one stacked training."""
        replicas, levels = [], []
        for exp in self.group:
            todo = [Level(m, k) for k in exp.config.compare_levels for m in ("oneshot", "random") if not exp.has((m, k))]
            if not todo:
                continue
            dense_weights = [w[0] for w in exp.model(DENSE).weights[:-1]]
            for method, k in todo:
                imp_masks = exp.masks(("imp", k))
                if method == "oneshot":
                    masks = top_magnitude_masks(dense_weights, [int(m.sum()) for m in imp_masks])
                else:
                    masks = random_masks(imp_masks, torch.Generator().manual_seed(exp.config.seed * 1000 + k))
                replicas.append((exp, masks))
                levels.append(Level(method, k))
        if not replicas:
            return
        model = self._rewound(replicas)
        result = self._train(model, [exp for exp, _ in replicas], self.cfg.rewind_step, f"oneshot + random ({len(replicas)} replicas)")
        for i, ((exp, _), level) in enumerate(zip(replicas, levels)):
            self._save(exp, level, model, result, i)
