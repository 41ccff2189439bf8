"""The dataset type every loader returns, its checks, and how a generated dataset draws a split.

`Dataset` holds images (N, C, H, W) and 0-based int64 labels in memory (docs/CONTRACTS.md);
constructing one with wrong shapes, dtypes, labels or NaN/Inf raises DataFormatError. A
generated dataset draws split s of seed S from `split_generator(S, s)` — the children of
``numpy.random.SeedSequence(S)`` — so the train and test splits of one seed are independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from imprf_utils.errors import ConfigError, DataFormatError

SPLITS = ("train", "test")
DEFAULT_SIZE = {"train": 40_000, "test": 10_000}
"""Number of images a generated dataset has when the option ``n`` is not given."""


@dataclass
class Dataset:
    """Images and 0-based labels, all in memory (see docs/CONTRACTS.md).

    x: (N, C, H, W) — uint8 for real images, float32 for generated ones.
    y: (N,) int64 labels in 0..num_classes-1.
    mean: (C*H*W,) float32 training-set mean for uint8 data; the network sees
        (x - mean) / 255 (Pellegrini & Biroli). None for float data, used as it is.
    periodic: True when images live on a torus; spatial measures then use minimum-image
        distances.
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    name: str
    mean: torch.Tensor | None = None
    class_names: list[str] | None = None
    periodic: bool = False

    def __post_init__(self) -> None:
        problem = _dataset_problem(self)
        if problem:
            raise DataFormatError(f"Dataset {self.name!r}: {problem}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> Dataset:
        """The same dataset with x, y and mean on `device`."""
        mean = None if self.mean is None else self.mean.to(device)
        return replace(self, x=self.x.to(device), y=self.y.to(device), mean=mean)

    def subset(self, index: torch.Tensor | slice) -> Dataset:
        """The samples x[index], y[index] (index: integer or boolean tensor, or a slice)."""
        return replace(self, x=self.x[index], y=self.y[index])


def _dataset_problem(ds: Dataset) -> str | None:
    """What is wrong with a Dataset's tensors (shapes, dtypes, labels, NaN/Inf), or None."""
    x, y = ds.x, ds.y
    if x.ndim != 4 or y.shape != (x.shape[0],) or y.dtype != torch.int64:
        return (
            f"x must be (N, C, H, W) and y (N,) int64; got x {tuple(x.shape)}, "
            f"y {tuple(y.shape)} {y.dtype} — reshape the images and convert labels with y.long()"
        )
    if x.dtype not in (torch.uint8, torch.float32):
        return f"x is {x.dtype}; images must be uint8 (real photos) or float32 — convert with x.float()"
    if ds.num_classes < 2:
        return f"num_classes is {ds.num_classes}; classification needs two or more classes"
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= ds.num_classes):
        return (
            f"labels span {int(y.min())}..{int(y.max())}, expected 0..{ds.num_classes - 1} — "
            "labels must be 0-based (subtract 1 from 1-based labels) and below num_classes"
        )
    if x.is_floating_point() and len(x):
        finite = torch.isfinite(x).flatten(1).all(1)
        if not bool(finite.all()):
            return (
                f"{int((~finite).sum())} of {len(x)} images hold NaN or Inf — drop or repair them; "
                "for generated data, lower the option that overflowed (e.g. skewed_texture's sigma)"
            )
    inputs = math.prod(x.shape[1:])
    if ds.mean is not None:
        if ds.mean.shape != (inputs,) or not bool(torch.isfinite(ds.mean).all()):
            return (
                f"mean must be {inputs} finite numbers (the training-set mean per input); "
                f"got {ds.mean.dtype} {tuple(ds.mean.shape)} — recompute it from the training images"
            )
    return None


def split_generator(seed: int, split: str) -> torch.Generator:
    """A CPU generator for one split: SeedSequence(seed).spawn(2)[0 train / 1 test]."""
    child = np.random.SeedSequence(seed).spawn(len(SPLITS))[SPLITS.index(split)]
    return torch.Generator().manual_seed(int(child.generate_state(1, dtype=np.uint64)[0]))


def balanced_labels(n: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """n labels, each class n // K or n // K + 1 times, in random order."""
    if n < num_classes:
        raise ConfigError(f"n={n} is smaller than the number of classes ({num_classes})")
    return (torch.arange(n) % num_classes)[torch.randperm(n, generator=generator)]
