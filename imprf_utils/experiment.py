"""One experiment: dense training, IMP rounds, and oneshot / random pruning at IMP's sparsities.

``run_experiment(config)`` does every stage that the run store does not hold yet and
returns the :class:`Experiment` that reads them back. The stages:

- level 0: train the dense network for ``steps``; keep its state at ``rewind_step``;
- level k (IMP): prune ``prune_rate`` of each hidden layer's remaining weights of level
  k-1's final weights, rewind the survivors to the rewind state, retrain to ``steps``;
- oneshot_k: prune level 0's final weights once to level k's per-layer counts, rewind, retrain;
- random_k: random masks with level k's per-layer counts, rewind, retrain.

All oneshot and random networks start from the same rewind state and see the same
batches, so they train together as stacked replicas.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from imprf_utils.data import DATASETS, Dataset, gaussian_clone, load_dataset
from imprf_utils.errors import ConfigError
from imprf_utils.models import MaskedFCN, replica_state, stack_states
from imprf_utils.pruning import kept_fraction, magnitude_masks, random_masks, removal_round, top_magnitude_masks
from imprf_utils.store import Run
from imprf_utils.train import DeviceData, train

DEFAULT_RUN_STORE = Path(os.environ.get("IMPRF_RUN_STORE", Path(__file__).resolve().parent.parent / "runs"))


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines an experiment's results (the run store hashes all of it)."""

    dataset: str = "skewed_texture"
    """Name for ``load_dataset``."""
    dataset_options: dict[str, Any] = field(default_factory=dict)
    """Options of the dataset (sizes, correlation lengths, ImageNet32 batches...)."""
    data_dir: str | None = None
    """Directory of a real dataset's files."""
    clone: bool = False
    """Train and test on the class-conditional Gaussian clone of the data instead."""
    data_seed: int = 0
    """Fixes synthetic data and the clone; the papers' three networks share one dataset."""
    seed: int = 0
    """Fixes the initialization, the batch order and the random masks."""
    hidden: tuple[int, ...] = (256, 256, 256)
    """Hidden-layer widths."""
    batchnorm: bool = False
    """BatchNorm on each layer's input (Pellegrini & Biroli's network)."""
    lr: float = 0.1
    """Plain SGD learning rate."""
    batch_size: int = 256
    steps: int = 3000
    """SGD steps per round (dense training and every retraining)."""
    rewind_step: int = 100
    """Step whose weights the survivors are rewound to."""
    eval_every: int = 100
    """Evaluate on the test set every so many steps."""
    prune_rate: float = 0.3
    """Fraction of each hidden layer's remaining weights removed per IMP round."""
    rounds: int = 10
    """IMP rounds."""
    compare_levels: tuple[int, ...] = (2, 4, 6, 8, 10)
    """IMP levels at whose sparsity oneshot and random pruning are trained."""
    test_limit: int | None = None
    """Evaluate on the first so many test images (P&B: 10,000); None: all."""

    def __post_init__(self) -> None:
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
            (all(1 <= k <= self.rounds for k in self.compare_levels), f"compare_levels {self.compare_levels}: must lie in 1..rounds={self.rounds}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExperimentConfig:
        """Build from plain values (notebook parameters, YAML); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown experiment parameters {unknown}; valid ones: {sorted(names)}")
        values = dict(values)
        for key in ("hidden", "compare_levels"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def name(self) -> str:
        return self.dataset + ("-clone" if self.clone else "")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_data(config: ExperimentConfig) -> tuple[Dataset, Dataset]:
    """Train and test sets of the config (the clone's test set is the clone of the test set)."""
    kwargs = dict(data_dir=config.data_dir, seed=config.data_seed, **config.dataset_options)
    train_ds = load_dataset(config.dataset, split="train", **kwargs)
    test_ds = load_dataset(config.dataset, split="test", **kwargs)
    if config.test_limit is not None:
        test_ds = test_ds.subset(torch.arange(min(config.test_limit, len(test_ds))))
    if config.clone:
        train_ds = gaussian_clone(train_ds, seed=config.data_seed)
        test_ds = gaussian_clone(test_ds, seed=config.data_seed + 1)
    return train_ds, test_ds


class Experiment:
    """Reads an experiment's levels back from the run store."""

    def __init__(self, config: ExperimentConfig, run_store: str | os.PathLike = DEFAULT_RUN_STORE):
        self.config = config
        self.run = Run(run_store, config.name, config.as_dict())

    @cached_property
    def data(self) -> tuple[Dataset, Dataset]:
        return load_data(self.config)

    def widths(self) -> tuple[int, ...]:
        train_ds = self.data[0]
        return (train_ds.x[0].numel(), *self.config.hidden, train_ds.num_classes)

    def level_names(self, method: str) -> list[str]:
        """Stored levels of a method ("imp", "oneshot", "random") in order of sparsity."""
        if method == "imp":
            return [f"level_{k}" for k in range(self.config.rounds + 1)]
        return [f"{method}_{k}" for k in self.config.compare_levels]

    def masks(self, level: str) -> list[torch.Tensor]:
        stored = self.run.load(level, "masks")
        return [stored[f"mask{layer}"][0] for layer in range(len(stored))]

    def model(self, level: str) -> MaskedFCN:
        """The trained network of a level, on the CPU, in eval mode."""
        return self._build(self.run.load(level, "state"), self.run.load(level, "masks")).eval()

    def metrics(self, level: str) -> dict[str, Any]:
        return self.run.metrics(level)

    def removal_round(self, layer: int = 0) -> torch.Tensor:
        """IMP round that removed each weight of ``layer`` (``rounds + 1`` for survivors)."""
        return removal_round([self.masks(level)[layer] for level in self.level_names("imp")])

    def _build(self, state: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> MaskedFCN:
        k = next(iter(state.values())).shape[0]
        model = MaskedFCN(self.widths(), seeds=[self.config.seed] * k, batchnorm=self.config.batchnorm)
        model.load_state_dict({**state, **{name: m.expand(k, -1, -1) for name, m in masks.items()}})
        return model


def run_experiment(
    config: ExperimentConfig,
    *,
    run_store: str | os.PathLike = DEFAULT_RUN_STORE,
    device: str | torch.device = "auto",
) -> Experiment:
    """Run every stage of ``config`` not yet in the run store; return the experiment."""
    exp = Experiment(config, run_store)
    device = resolve_device(device)
    with exp.run.lock():
        exp.run.clean_partial()
        missing = [lvl for m in ("imp", "oneshot", "random") for lvl in exp.level_names(m) if not exp.run.has(lvl)]
        if not missing:
            return exp
        train_ds, test_ds = exp.data
        train_data = DeviceData.from_dataset(train_ds, device)
        test_data = DeviceData.from_dataset(test_ds, device, mean=train_data.mean)
        stages = _Stages(exp, train_data, test_data, device)
        stages.dense()
        for k in range(1, config.rounds + 1):
            stages.imp_round(k)
        stages.oneshot_and_random()
    return exp


class _Stages:
    def __init__(self, exp: Experiment, train_data: DeviceData, test_data: DeviceData, device: torch.device):
        self.exp, self.cfg, self.run = exp, exp.config, exp.run
        self.train_data, self.test_data, self.device = train_data, test_data, device

    def _train(self, model: MaskedFCN, start_step: int, description: str, rewind: bool = False):
        return train(
            model.to(self.device),
            self.train_data,
            self.test_data,
            steps=self.cfg.steps,
            batch_size=self.cfg.batch_size,
            lr=self.cfg.lr,
            batch_seed=self.cfg.seed,
            eval_every=self.cfg.eval_every,
            start_step=start_step,
            rewind_step=self.cfg.rewind_step if rewind else None,
            description=f"{self.cfg.name} seed {self.cfg.seed}: {description}",
        )

    def _rewound(self, masks_per_replica: list[list[torch.Tensor]]) -> MaskedFCN:
        """The rewind state, one replica per mask set, BN running statistics reset (P&B)."""
        rewind = self.run.load("level_0", "rewind")
        k = len(masks_per_replica)
        state = stack_states([rewind] * k)
        for name in state:
            if name.startswith("running_mean"):
                state[name].zero_()
            elif name.startswith("running_var"):
                state[name].fill_(1.0)
        model = self.exp._build(state, self.run.load("level_0", "masks"))
        model.set_masks([torch.stack(layer) for layer in zip(*masks_per_replica)])
        return model

    def _save(self, level: str, model: MaskedFCN, result, k: int = 0, rewind=None) -> None:
        sd = {name: t for name, t in model.state_dict().items()}
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
            tensors["rewind"] = {n: t for n, t in rewind.items() if not n.startswith("mask")}
        self.run.save(level, tensors, metrics)

    def dense(self) -> None:
        if self.run.has("level_0"):
            return
        model = MaskedFCN(self.exp.widths(), seeds=[self.cfg.seed], batchnorm=self.cfg.batchnorm)
        result = self._train(model, 0, "dense", rewind=True)
        self._save("level_0", model, result, rewind=result.rewind_state)

    def imp_round(self, k: int) -> None:
        level = f"level_{k}"
        if self.run.has(level):
            return
        previous = self.exp.model(f"level_{k - 1}")
        weights = [w[0] for w in previous.weights[:-1]]
        masks = magnitude_masks(weights, [m[0] for m in previous.masks], self.cfg.prune_rate)
        model = self._rewound([masks])
        result = self._train(model, self.cfg.rewind_step, f"IMP round {k}/{self.cfg.rounds}")
        self._save(level, model, result)

    def oneshot_and_random(self) -> None:
        todo = [(m, k) for k in self.cfg.compare_levels for m in ("oneshot", "random") if not self.run.has(f"{m}_{k}")]
        if not todo:
            return
        dense = self.exp.model("level_0")
        dense_weights = [w[0] for w in dense.weights[:-1]]
        mask_sets = []
        for method, k in todo:
            imp_masks = self.exp.masks(f"level_{k}")
            if method == "oneshot":
                mask_sets.append(top_magnitude_masks(dense_weights, [int(m.sum()) for m in imp_masks]))
            else:
                gen = torch.Generator().manual_seed(self.cfg.seed * 1000 + k)
                mask_sets.append(random_masks(imp_masks, gen))
        model = self._rewound(mask_sets)
        result = self._train(model, self.cfg.rewind_step, f"oneshot + random ({len(todo)} replicas)")
        for i, (method, k) in enumerate(todo):
            self._save(f"{method}_{k}", model, result, k=i)
