"""Datasets of the suite behind one entry point, `load_dataset(name, ...)`: the registry.

Generated (deterministic per seed; train and test are disjoint draws of one seed):

- ``nlgp`` — Ingrosso & Goldt's nonlinear Gaussian process; classes differ in correlation
  length ξ and/or gain g (`imprf_utils.data.synthetic.nlgp_dataset`).
- ``skewed_texture`` — class template × sign of a skewed texture; its Gaussian clone keeps only
  the template (`imprf_utils.data.synthetic.skewed_texture_dataset`).
- ``natural`` — grayscale patches of photographs shipped inside installed packages
  (scikit-learn, scikit-image, matplotlib), labelled by photo
  (`imprf_utils.data.photographs.natural_dataset`).
- ``photos`` — patches of those photographs, real vs phase-scrambled × the sign of a weak
  template; train and test from different photographs
  (`imprf_utils.data.photographs.photos_dataset`).

Read from the official files in ``data_dir`` (never downloaded, never replaced by another set;
`imprf_utils.data.official_files`):

- ``imagenet32`` — Downsampled ImageNet 32×32 (Chrabaszcz, Loshchilov & Hutter 2017):
  ``train_data_batch_1..10`` and ``val_data`` as pickles or ``.npz``.
- ``cifar10`` — the CIFAR-10 python batches ``data_batch_1..5``, ``test_batch``, ``batches.meta``.

`Dataset` (from `imprf_utils.data.dataset`) and `gaussian_clone` (from `imprf_utils.data.clone`) are
re-exported here, so ``from imprf_utils.data import load_dataset, gaussian_clone, Dataset``
is all a notebook needs. `clone_splits` is the clone every run and notebook uses: from the
exact moments where the generator knows them (`exact_moments`), else from independent halves
of the training images.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from imprf_utils.data.clone import gaussian_clone, gaussian_clone_from_moments
from imprf_utils.data.dataset import DEFAULT_SIZE, SPLITS, Dataset
from imprf_utils.data.official_files import read_cifar10, read_imagenet32
from imprf_utils.data.photographs import DEFAULT_PHOTOS, PHOTOS, PHOTOS_VERSION, check_photos, natural_dataset, photos_dataset
from imprf_utils.data.synthetic import nlgp_classes, nlgp_dataset, nlgp_moments, skewed_texture_dataset, skewed_texture_moments
from imprf_utils.errors import ConfigError

__all__ = [
    "DATASETS", "DEFAULT_PHOTOS", "DEFAULT_SIZE", "PHOTOS", "SPLITS", "Dataset",
    "BY_CONSTRUCTION", "CLONE_VERSION", "CLONE_WITHOUT_LOCAL_CUE", "LOCAL_COMPONENTS", "SEMANTIC_SIGNAL", "HIDDEN_CONTRASTS", "HiddenContrast", "RECIPE_VERSIONS", "check_options", "clone_splits", "row_kind", "exact_moments", "gaussian_clone", "load_dataset",
]

_GENERATED: dict[str, Callable[..., Dataset]] = {
    "nlgp": nlgp_dataset,
    "skewed_texture": skewed_texture_dataset,
    "natural": natural_dataset,
    "photos": photos_dataset,
}
"""Generated datasets: build(split, seed, **options)."""

_FROM_FILES: dict[str, Callable[..., Dataset]] = {
    "imagenet32": read_imagenet32,
    "cifar10": read_cifar10,
}
"""Datasets read from official files: build(data_dir, split, **options)."""

DATASETS = (*_GENERATED, *_FROM_FILES)

CLONE_VERSION = 3
"""The recipe of `clone_splits`; runs of a clone key on it (`clone_version`). 1: one sample covariance for
both splits; 2: exact moments or independent halves, the test clone drawn from ``seed + 1``, which is the
next draw's training seed; 3: the splits drawn from ``2·seed`` and ``2·seed + 1``, so no two draws share a
stream. Versions 2 and 3 are one recipe at seed 0, whose runs keep their version-2 key."""

RECIPE_VERSIONS = {"photos": PHOTOS_VERSION}
"""Datasets whose recipe changed since runs of them were first stored: runs of them key on the version."""

CLONE_WITHOUT_LOCAL_CUE = "the clone has no local cue"
"""Built so that the Gaussian clone has nothing local to find: the data-vs-clone contrasts of Figs. 3B-C."""
LOCAL_COMPONENTS = "local non-Gaussian components"
"""Built from local non-Gaussian sources: ICA of the data localizes (Fig. 2)."""
SEMANTIC_SIGNAL = "the semantic grouping carries the signal"
"""Built so that the ``"semantic"`` superclasses group by the local cue and ``mod<N>`` mixes it (notebook 06)."""

BY_CONSTRUCTION: dict[str, frozenset[str]] = {
    "skewed_texture": frozenset({CLONE_WITHOUT_LOCAL_CUE, LOCAL_COMPONENTS, SEMANTIC_SIGNAL}),
    "nlgp": frozenset({LOCAL_COMPONENTS}),
}
"""What each generated dataset is built to have (docs/default_task.md). A row that asserts one of these
on that dataset is true by construction; on real images it is the papers' claim."""


def row_kind(dataset: str, construct: str) -> str:
    """A claims row's kind: "positive control" where ``dataset`` is built so that ``construct`` holds
    (``BY_CONSTRUCTION``), "claim" where it is the papers' assertion on data not built for it."""
    known = {c for constructs in BY_CONSTRUCTION.values() for c in constructs}
    if construct not in known:
        raise ValueError(f"row_kind: unknown construct {construct!r}; known: {sorted(known)}")
    return "positive control" if construct in BY_CONSTRUCTION.get(dataset.removesuffix("-clone"), ()) else "claim"


@dataclass(frozen=True)
class HiddenContrast:
    """A contrast between classes that a task builds beyond their second moments: a Gaussian clone
    cannot see it, and a Gaussian class-covariance probe (`clone.gaussian_probe_accuracy`) must not."""

    name: str
    """In words, e.g. "real vs scrambled"."""
    classes: tuple[int, ...]
    """The classes on one side of the contrast."""
    clone_ceiling: float
    """The best test accuracy of a classifier blind to the contrast (photos: the template bit, 1/2)."""


HIDDEN_CONTRASTS = {"photos": HiddenContrast("real vs scrambled", (2, 3), 0.5)}
"""Tasks whose class signal a Gaussian clone must not keep, by design: notebook 03 probes it."""

_OWN_TEST_MOMENTS = ("photos",)
"""Datasets whose test split comes from other sources than the training split (``photos``: other
photographs): their test clone is drawn from the test images' own moments (`clone_splits`)."""

_MOMENTS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "nlgp": nlgp_moments,
    "skewed_texture": skewed_texture_moments,
}
"""Generated datasets whose class means and covariances are known exactly: moments(**options)."""


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    split: str = "train",
    seed: int = 0,
    **options: Any,
) -> Dataset:
    """Load or generate dataset `name` (one of `DATASETS`) for `split` ("train" or "test").

    data_dir: the folder of the official files, for ``imagenet32`` and ``cifar10`` only.
    seed: fixes a generated dataset entirely (train and test are disjoint draws of one seed);
        the file datasets are returned in file order and do not use it.
    options (per dataset; an unknown one raises ConfigError naming the valid ones):
        nlgp:           n, xi=(1, 2, 3, 4), gain=10.0, size=16, periodic=True
        skewed_texture: n, sigma=1.0, amplitude=0.25, xi=2.0, size=16
        natural:        n, size=16, photos=DEFAULT_PHOTOS
        photos:         n, size=16, grayscale=True, amplitude=0.25, min_contrast=0.1,
                        scramble="window", photos=PHOTOS
        imagenet32:     batches=(1, ..., 10), limit=None
        cifar10:        batches=(1, ..., 5), limit=None
    n defaults to DEFAULT_SIZE[split] (40,000 train, 10,000 test).
    """
    check_options(name, options)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if name in _GENERATED:
        return _GENERATED[name](split, seed, **options)
    return _FROM_FILES[name](data_dir, split, **options)


def check_options(name: str, options: dict[str, Any]) -> None:
    """Raise ConfigError for an unknown dataset name or option, or for options that give fewer
    than two classes — without reading or generating any data (ExperimentConfig calls it)."""
    if name not in _GENERATED and name not in _FROM_FILES:
        raise ConfigError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    build = _GENERATED.get(name) or _FROM_FILES[name]
    parameters = [
        p for p in inspect.signature(build).parameters.values() if p.kind is p.KEYWORD_ONLY
    ]
    valid = [p.name for p in parameters]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for dataset {name!r}; "
            f"valid options: {', '.join(valid)}"
        )
    values = {p.name: options.get(p.name, p.default) for p in parameters}
    if name == "nlgp":
        nlgp_classes(values["xi"], values["gain"])
    elif name in ("natural", "photos"):
        check_photos(values["photos"], name)


def exact_moments(name: str, **options: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Class means (C, D) and covariances ((C, D, D), or (D, D) shared) of a generated task whose
    generator knows them (``nlgp``, ``skewed_texture``), for its ``options``; None for any other dataset."""
    if name not in _MOMENTS:
        return None
    moments = _MOMENTS[name]
    accepted = inspect.signature(moments).parameters
    return moments(**{k: v for k, v in options.items() if k in accepted})


def clone_splits(
    name: str, train: Dataset, test: Dataset, *, seed: int = 0, **options: Any
) -> tuple[Dataset, Dataset]:
    """The Gaussian clones of dataset ``name``'s train and test splits (with its ``options``).

    Where the generator knows the class moments (`exact_moments`), both clones are drawn
    from them (generator seeds ``2·seed`` and ``2·seed + 1``: each data draw its own streams). Where the test split comes from other sources
    than the training split (``photos``: other photographs), each clone is drawn from its own
    split's moments, so the data and the clone are scored on comparable test sets. Otherwise the
    moments are the training images' (a test set may be too small for a covariance), from two
    independent halves:
    the training clone from one random half (fixed by ``seed``), the test clone from the
    other. Drawn from one sample covariance, both clones would share its sampling noise,
    a pattern a network can learn and find again at test time; with exact moments or
    independent halves it cannot.
    """
    moments = exact_moments(name, **options)
    train_seed, test_seed = 2 * seed, 2 * seed + 1
    if moments is not None:
        return (gaussian_clone_from_moments(train, *moments, seed=train_seed),
                gaussian_clone_from_moments(test, *moments, seed=test_seed))
    if name in _OWN_TEST_MOMENTS:
        return gaussian_clone(train, seed=train_seed), gaussian_clone(test, seed=test_seed)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(train_seed))
    first, second = order[: len(train) // 2].sort().values, order[len(train) // 2 :].sort().values
    return (gaussian_clone(train, seed=train_seed, statistics=train.subset(first)),
            gaussian_clone(test, seed=test_seed, statistics=train.subset(second)))
