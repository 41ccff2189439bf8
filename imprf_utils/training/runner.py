"""The IMP driver: ``run_experiments`` trains every level of its configs that the run store lacks.

Read top to bottom:

1. ``run_experiments`` groups the configs that may train as one stacked model (`seed_group`:
   equal but for seed, compare levels and data) and splits each group by data layout
   (`stacked_parts`); every run of a group is locked, and an interrupted level cleaned away.
2. For each part, `_Stages` trains, each stage one stacked training of every replica that
   still lacks it:

   - ``dense``: ("imp", 0), the dense network for ``steps``, keeping its state at ``rewind_step``;
   - ``imp_round(k)``: prune ``prune_rate`` of each hidden layer's remaining weights of
     ("imp", k-1)'s final weights, rewind the survivors to the rewind state, retrain to ``steps``;
   - ``oneshot_and_random``: ("oneshot", k), the dense network's final weights pruned once to
     ("imp", k)'s per-layer counts, and ("random", k), random masks of those counts; both
     rewound and retrained, all of them in one stacked training (they start from the same
     rewind state and see the same batches).

   A stage saves each replica's level into its own run directory (`_Stages._save`).

Stacking only shares the matrix products: each replica gets the bits of one-at-a-time training.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from contextlib import ExitStack

import torch

from imprf_utils.output import DEFAULT_RUN_STORE
from imprf_utils.training.config import DATA_FIELDS, ExperimentConfig
from imprf_utils.training.device_data import DeviceData
from imprf_utils.training.experiment import DENSE, Experiment, Level, data_key
from imprf_utils.training.models import MaskedFCN, replica_state, reset_batchnorm_statistics, split_masks, stack_states
from imprf_utils.training.pruning import kept_fraction, magnitude_masks, random_masks, top_magnitude_masks
from imprf_utils.training.train import train


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


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``device``, with "auto" the GPU if there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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


def _run_group(group: list[Experiment], device: torch.device, dense_only: bool = False) -> None:
    """Lock every run of a seed group (and clean what an interrupted level left), then train the
    stages its runs lack, part by part: dense, IMP rounds 1..rounds, oneshot and random."""
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

    def dense(self) -> None:
        """("imp", 0) of every experiment that lacks it: the dense network, its state at ``rewind_step`` kept."""
        todo = [exp for exp in self.group if not exp.has(DENSE)]
        if not todo:
            return
        model = MaskedFCN(todo[0].widths(), seeds=[exp.config.seed for exp in todo], batchnorm=self.cfg.batchnorm)
        result = self._train(model, todo, 0, "dense", rewind=True)
        for k, exp in enumerate(todo):
            self._save(exp, DENSE, model, result, k, rewind=result.rewind_state)

    def imp_round(self, k: int) -> None:
        """("imp", k): ``prune_rate`` of each hidden layer's remaining weights of ("imp", k - 1) pruned by
        magnitude, the survivors rewound, retrained from ``rewind_step``."""
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

    def _rewound(self, replicas: list[tuple[Experiment, list[torch.Tensor]]]) -> MaskedFCN:
        """One replica per (experiment, masks): its rewind state, masks applied, BN statistics reset (P&B)."""
        state = reset_batchnorm_statistics(stack_states([exp.load(DENSE, "rewind") for exp, _ in replicas]))
        model = replicas[0][0].build_model(state, replicas[0][0].load(DENSE, "masks"))
        model.set_masks([torch.stack(layer) for layer in zip(*(masks for _, masks in replicas))])
        return model

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

    @staticmethod
    def _save(exp: Experiment, level: Level, model: MaskedFCN, result, k: int, rewind=None) -> None:
        """Replica k of a stacked training as ``exp``'s ``level``: its masks, its state (and, for the dense
        level, its rewind state), its learning curve and sparsity, written atomically to its run directory."""
        masks, weights = split_masks(model.state_dict())
        masks = {name: t[k : k + 1] for name, t in masks.items()}
        state = replica_state(weights, k)
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
            tensors["rewind"] = replica_state(split_masks(rewind)[1], k)
        exp.run.save(level.directory, tensors, metrics)


def _joint_description(configs: list[ExperimentConfig]) -> str:
    """The progress name of datasets trained together, each named once (a dataset drawn per seed
    is one name): "skewed_texture and its clone", "skewed_texture (superclasses=semantic) and
    skewed_texture (superclasses=mod2)", "skewed_texture, skewed_texture (train_fraction=0.1) and its clone"."""
    clone = dataclasses.replace(configs[0], clone=True).description
    names = list(dict.fromkeys("its clone" if config.description == clone else config.description for config in configs))
    return " and ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " and " + names[-1]
