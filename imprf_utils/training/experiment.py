"""One experiment's stored networks: ``Level`` names them, ``Experiment`` reads them back.

An experiment (an ``ExperimentConfig``) trains these networks, each a :class:`Level`
``(method, k)`` (the runner, ``imprf_utils.training.runner``, trains them):

- ("imp", 0): the dense network, with its state at ``rewind_step``;
- ("imp", k): after k rounds of IMP (prune, rewind, retrain);
- ("oneshot", k) and ("random", k): pruned once to ("imp", k)'s per-layer counts, by
  magnitude or at random, rewound and retrained.

``Level.directory`` is the one place that names a level's directory in the run store;
``store_key`` is what the run store hashes; ``load_data`` rebuilds a config's train and test
sets. :class:`Experiment` reads a level's masks, network, metrics and test inputs back.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, NamedTuple

import torch

from imprf_utils.data import CLONE_VERSION, RECIPE_VERSIONS, Dataset, clone_splits, load_dataset
from imprf_utils.data.superclasses import apply_superclasses, superclass_mapping
from imprf_utils.output import DEFAULT_RUN_STORE
from imprf_utils.training.config import DATA_FIELDS, ExperimentConfig
from imprf_utils.training.device_data import DeviceData
from imprf_utils.training.models import MaskedFCN, first_replica_masks
from imprf_utils.training.pruning import removal_round
from imprf_utils.training.store import Run

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
        return first_replica_masks(self.load(level, "masks"))

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
