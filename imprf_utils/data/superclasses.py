"""Superclasses: train on coarser labels (Pellegrini & Biroli's superclass ablation).

P&B grouped ImageNet32's 1000 classes into 10 superclasses two ways: *semantically*
(dogs, other mammals, birds, ... from the ImageNet hierarchy; their supplementary
``ImageNet_10cl.txt``) and *meaninglessly*, by label modulo 10. Their claim: locality
and accuracy are better with the meaningful grouping.

A grouping is named by a string (``ExperimentConfig.superclasses``):

- ``"mod<N>"`` — label modulo N (``"mod10"``: P&B's meaningless grouping);
- ``"semantic"`` — the dataset's built-in meaningful grouping (`BUILTIN`): for the
  embedded data, the classes that share their texture; ImageNet32 needs a file;
- a path to a mapping file: P&B's 4-column text format (``wnid index superclass name``,
  index 0..num_classes-1, whitespace-separated, the name may contain spaces) or a
  two-column CSV ``label,superclass`` (an optional header line).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import torch

from imprf_utils.data.dataset import Dataset
from imprf_utils.errors import ConfigError, DataFormatError

MODULO = re.compile(r"mod(\d+)")

BUILTIN: dict[str, tuple[list[int], list[str]]] = {
    # Classes c = (template c mod 2, texture sign c // 2): grouping by texture keeps the local,
    # non-Gaussian contrast (the one a Gaussian clone cannot see); modulo 2 keeps the template's.
    "skewed_texture": ([0, 0, 1, 1], ["right-skewed texture", "left-skewed texture"]),
    # P&B's animals vs man-made objects, on CIFAR-10's classes.
    "cifar10": ([0, 0, 1, 1, 1, 1, 1, 1, 0, 0], ["vehicles", "animals"]),
}
"""Built-in ``"semantic"`` groupings: (superclass of each class, superclass names)."""


def check_superclasses(spec: str | None, dataset: str) -> None:
    """Raise ConfigError for a grouping that cannot apply to ``dataset``, before loading any data."""
    if spec is None or MODULO.fullmatch(spec) and int(spec[3:]) >= 2:
        return
    if spec == "semantic":
        if dataset not in BUILTIN:
            raise ConfigError(
                f"superclasses 'semantic': no built-in grouping for {dataset!r} (built in: "
                f"{', '.join(BUILTIN)}); give the path of a mapping file instead — P&B's "
                "ImageNet_10cl.txt (wnid, index, superclass, name) or a 'label,superclass' CSV"
            )
        return
    if MODULO.fullmatch(spec):
        raise ConfigError(f"superclasses {spec!r}: modulo needs N >= 2 (e.g. 'mod10')")
    if not Path(spec).is_file():
        raise ConfigError(
            f"superclasses {spec!r}: not 'mod<N>', 'semantic' or an existing mapping file "
            "(P&B's ImageNet_10cl.txt format or a 'label,superclass' CSV)"
        )


def superclass_mapping(spec: str, dataset: str, num_classes: int) -> tuple[torch.Tensor, list[str]]:
    """(superclass of each class (num_classes,) int64, superclass names) for the grouping ``spec``."""
    check_superclasses(spec, dataset)
    if MODULO.fullmatch(spec):
        n = int(spec[3:])
        if n >= num_classes:
            raise ConfigError(f"superclasses {spec!r}: {dataset} has only {num_classes} classes")
        return torch.arange(num_classes) % n, [f"labels = {s} mod {n}" for s in range(n)]
    if spec == "semantic":
        groups, names = BUILTIN[dataset]
        if len(groups) != num_classes:
            raise ConfigError(f"superclasses 'semantic' expects {len(groups)} classes of {dataset}, got {num_classes}")
        return torch.tensor(groups), list(names)
    return read_mapping(Path(spec), num_classes)


def read_mapping(path: Path, num_classes: int) -> tuple[torch.Tensor, list[str]]:
    """A mapping file (P&B's 4-column text or a 'label,superclass' CSV) → (superclass per class, names).

    Every class 0..num_classes-1 must appear exactly once; superclasses must be 0..S-1
    with none empty. Names come from the 4-column format (the classes' names joined per
    superclass, first three shown); a CSV gives "superclass s".
    """
    pairs: dict[int, int] = {}
    members: dict[int, list[str]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")] if "," in line else line.split(maxsplit=3)
        if len(fields) == 2:
            label, group, name = fields[0], fields[1], None
        elif len(fields) == 4:
            label, group, name = fields[1], fields[2], fields[3]
        else:
            raise DataFormatError(
                f"{path}:{number}: expected 'wnid index superclass name' or 'label,superclass', got {line!r}"
            )
        if not (label.isdigit() and group.isdigit()):
            if number == 1 and len(fields) == 2:  # a CSV header
                continue
            raise DataFormatError(f"{path}:{number}: class index and superclass must be integers, got {line!r}")
        label_, group_ = int(label), int(group)
        if not 0 <= label_ < num_classes:
            raise DataFormatError(f"{path}:{number}: class {label_} outside 0..{num_classes - 1} (indices are 0-based)")
        if label_ in pairs:
            raise DataFormatError(f"{path}:{number}: class {label_} is mapped twice")
        pairs[label_] = group_
        members.setdefault(group_, []).append(name or str(label_))
    missing = sorted(set(range(num_classes)) - set(pairs))
    if missing:
        raise DataFormatError(f"{path}: {len(missing)} classes have no superclass, e.g. {missing[:5]}")
    groups = sorted(members)
    if groups != list(range(len(groups))):
        raise DataFormatError(f"{path}: superclasses must be numbered 0..S-1 without gaps, got {groups}")
    mapping = torch.tensor([pairs[c] for c in range(num_classes)])
    names = [", ".join(members[g][:3]) + (", ..." if len(members[g]) > 3 else "") for g in groups]
    return mapping, names


def apply_superclasses(ds: Dataset, mapping: torch.Tensor, names: list[str]) -> Dataset:
    """The same images with labels mapping[y] and ``len(names)`` classes."""
    return replace(ds, y=mapping.to(ds.y.device)[ds.y], num_classes=len(names), class_names=list(names))
