"""The official files of ImageNet32 and CIFAR-10, read with a restricted unpickler.

- ImageNet32 (Downsampled ImageNet 32×32, Chrabaszcz, Loshchilov & Hutter 2017):
  ``train_data_batch_1..10`` and ``val_data``, pickled dicts (``data`` uint8 (n, 3072)
  channel-planar, ``labels`` 1..1000, ``mean`` in the train files) or their ``.npz`` variant.
- CIFAR-10: the python batches ``data_batch_1..5``, ``test_batch`` and ``batches.meta``
  (Python 2 pickles).

Nothing is downloaded and nothing falls back to another set: a missing folder or file raises
FileNotFoundError saying where to get it, a malformed one DataFormatError naming the file.
Pickles are read by an unpickler that can only build plain containers and numpy arrays; any
other global (``os.system``, ``builtins.eval`` …) raises `UnsafePickleError` before it runs.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imprf_utils.data.dataset import Dataset
from imprf_utils.errors import ConfigError, DataFormatError, UnsafePickleError

REFETCH = "; the file is not in the official format — download and unpack it again"
"""Ends every message about a malformed data file: what to do about it."""


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that builds only builtin containers, numbers, strings and numpy arrays.

    `find_class` is the only way a pickle can reach code; it answers from a fixed table and
    raises UnsafePickleError for anything else, so a crafted file runs nothing.
    """

    def find_class(self, module: str, name: str) -> Any:
        allowed = _PICKLE_GLOBALS.get((module, name))
        if allowed is None:
            raise UnsafePickleError(
                f"the pickle asks for {module}.{name}; only containers and numpy arrays are allowed"
            )
        return allowed


def _latin1_encode(text: str, encoding: str) -> bytes:
    """`_codecs.encode` as Python 3 pickles (protocol < 3) use it for bytes: latin-1 only."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(
            f"the pickle calls _codecs.encode with {encoding!r}; only latin-1 is allowed"
        )
    return text.encode("latin-1")


def _empty_bytes() -> bytes:
    """`builtins.bytes` as pickles use it: for b'' only."""
    return b""


def _pickle_globals() -> dict[tuple[str, str], Any]:
    """The globals numpy arrays need, under numpy 1.x (numpy.core) and 2.x (numpy._core) names."""
    reconstruct = np.empty(0).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # protocol-5 arrays
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        table[(f"{core}.multiarray", "scalar")] = scalar
        table[(f"{core}.numeric", "_frombuffer")] = frombuffer
    for builtins in ("builtins", "__builtin__"):  # __builtin__: Python 2 pickles
        table[(builtins, "set")] = set
        table[(builtins, "frozenset")] = frozenset
        table[(builtins, "bytes")] = _empty_bytes
    return table


_PICKLE_GLOBALS = _pickle_globals()


def _read_batch(path: Path) -> dict[str, Any]:
    """The dict stored in a batch file: a pickle (Python 2 or 3) or an .npz (no pickles inside).

    Keys come back as str (Python 2 pickles store bytes keys). Unreadable → DataFormatError.
    """
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                return {key: npz[key] for key in npz.files}
        with open(path, "rb") as f:
            content = _ArrayUnpickler(f, encoding="latin1").load()
    except UnsafePickleError as error:
        raise UnsafePickleError(
            f"{path}: {error}; refusing to load it — replace it with the official file"
        ) from None
    except MemoryError:
        raise
    except Exception as error:
        raise DataFormatError(
            f"{path}: cannot be read ({type(error).__name__}: {error}); the file is truncated "
            "or not in the official format — download and unpack it again"
        ) from error
    if not isinstance(content, dict):
        raise DataFormatError(
            f"{path}: holds a {type(content).__name__}, expected a dict of arrays{REFETCH}"
        )
    return {_text(key): value for key, value in content.items()}


def _text(value: Any) -> Any:
    """bytes (Python 2 str in a pickle) decoded as latin-1; anything else as it is."""
    return value.decode("latin1") if isinstance(value, bytes) else value


def _checked_batch(
    path: Path, batch: dict[str, Any], *, labels_from: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(data (n, 3072) uint8, labels (n,) int64 0-based) of a batch, after checking both."""
    missing = [key for key in ("data", "labels") if key not in batch]
    if missing:
        raise DataFormatError(
            f"{path}: no key(s) {missing} (found {sorted(batch)}); expected 'data' and 'labels'"
            f"{REFETCH}"
        )
    data, labels = batch["data"], np.asarray(batch["labels"])
    is_array = isinstance(data, np.ndarray)
    if not (is_array and data.ndim == 2 and data.shape[1] == 3072 and data.dtype == np.uint8):
        found = f"{data.dtype} {data.shape}" if is_array else type(data).__name__
        raise DataFormatError(
            f"{path}: 'data' is {found}, expected uint8 (n, 3072) channel-planar rows{REFETCH}"
        )
    if labels.dtype.kind not in "iu" or labels.shape != (len(data),):
        raise DataFormatError(
            f"{path}: 'labels' is {labels.dtype} {labels.shape}, expected {len(data)} integers"
            f"{REFETCH}"
        )
    last = labels_from + num_classes - 1
    if len(labels) and (labels.min() < labels_from or labels.max() > last):
        raise DataFormatError(
            f"{path}: labels span {labels.min()}..{labels.max()}, expected {labels_from}..{last}"
            f"{REFETCH}"
        )
    return data, labels.astype(np.int64) - labels_from


def _checked_mean(path: Path, batch: dict[str, Any]) -> torch.Tensor:
    """The 'mean' of a batch as a finite float32 (3072,) tensor."""
    mean = np.asarray(batch["mean"])
    if mean.dtype.kind not in "fiu" or mean.size != 3072:
        raise DataFormatError(
            f"{path}: 'mean' is {mean.dtype} {mean.shape}, expected 3072 numbers{REFETCH}"
        )
    if not np.isfinite(mean).all():
        raise DataFormatError(f"{path}: 'mean' contains NaN or Inf{REFETCH}")
    return torch.from_numpy(mean.astype(np.float32).reshape(3072))


def _stack_images(parts: list[np.ndarray], limit: int | None) -> torch.Tensor:
    """Concatenate (n_i, 3072) uint8 parts into (N, 3, 32, 32), freeing each part once copied."""
    total = sum(len(p) for p in parts) if limit is None else min(limit, sum(len(p) for p in parts))
    x = torch.empty(total, 3072, dtype=torch.uint8)
    start = 0
    while parts and start < total:
        part = parts.pop(0)[: total - start]
        x[start : start + len(part)].numpy()[:] = part
        start += len(part)
    return x.reshape(total, 3, 32, 32)


def _batch_path(folder: Path, stem: str) -> Path | None:
    """folder/stem, else folder/stem.npz, else None."""
    for path in (folder / stem, folder / f"{stem}.npz"):
        if path.is_file():
            return path
    return None


def _require_folder(data_dir: str | Path | None, dataset: str, expected: str, how: str) -> Path:
    if data_dir is None:
        raise FileNotFoundError(f"{dataset}: pass data_dir=<folder with {expected}>; {how}")
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{dataset}: no folder {folder} (expected {expected}); {how}")
    return folder


def _require_batches(folder: Path, stems: list[str], dataset: str, how: str) -> list[Path]:
    paths = [_batch_path(folder, stem) for stem in stems]
    missing = [stem for stem, path in zip(stems, paths) if path is None]
    if missing:
        raise FileNotFoundError(
            f"{dataset}: {', '.join(missing)} not found in {folder} (nor with .npz); {how}"
        )
    return paths


def _checked_choice(
    batches: tuple[int, ...], last: int, limit: int | None, dataset: str
) -> tuple[int, ...]:
    """`batches` as a tuple, after checking it and `limit`."""
    if not isinstance(batches, (tuple, list)) or not batches or any(
        b not in range(1, last + 1) for b in batches
    ):
        raise ConfigError(
            f"{dataset}: batches must be a non-empty tuple of numbers in 1..{last}, got {batches!r}"
        )
    if limit is not None and limit < 1:
        raise ConfigError(f"{dataset}: limit must be a positive number of images, got {limit!r}")
    return tuple(batches)


def _read_images(
    paths: list[Path], limit: int | None, *, labels_from: int, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Images (N, 3, 32, 32) and 0-based labels of the files in order, stopping once `limit`
    images are read; also the first file's dict (for the keys beside 'data' and 'labels')."""
    parts, labels, count, first = [], [], 0, None
    for path in paths:
        batch = _read_batch(path)
        data, y = _checked_batch(path, batch, labels_from=labels_from, num_classes=num_classes)
        if first is None:
            first = {key: value for key, value in batch.items() if key not in ("data", "labels")}
        parts.append(data)
        labels.append(y)
        count += len(data)
        if limit is not None and count >= limit:
            break
    x = _stack_images(parts, limit)
    return x, torch.from_numpy(np.concatenate(labels)[: len(x)]), first


IMAGENET32_HOW = (
    "download Imagenet32_train.zip and Imagenet32_val.zip (\"Downsampled ImageNet 32x32\", or "
    "their npz versions) from https://image-net.org/download-images and unpack the files into "
    "that folder"
)


def read_imagenet32(
    data_dir: str | Path | None,
    split: str,
    *,
    batches: tuple[int, ...] = tuple(range(1, 11)),
    limit: int | None = None,
) -> Dataset:
    """ImageNet32 (Chrabaszcz et al. 2017): train = train_data_batch_<batches>, test = val_data.

    Labels 1..1000 become 0..999. `mean` is the training mean stored in the train files
    (that of train_data_batch_1 for split="test"; None when that file is absent — then take it
    from the train split). `limit` keeps the first images in file order.
    """
    batches = _checked_choice(batches, 10, limit, "imagenet32")
    stems = [f"train_data_batch_{b}" for b in batches] if split == "train" else ["val_data"]
    expected = "train_data_batch_1..10 and val_data"
    folder = _require_folder(data_dir, "imagenet32", expected, IMAGENET32_HOW)
    paths = _require_batches(folder, stems, "imagenet32", IMAGENET32_HOW)
    x, y, first = _read_images(paths, limit, labels_from=1, num_classes=1000)
    if split == "train":
        mean_path, mean_batch = paths[0], first
    else:
        mean_path = _batch_path(folder, "train_data_batch_1")
        mean_batch = None if mean_path is None else _read_batch(mean_path)
    if mean_batch is None:
        return Dataset(x, y, 1000, "imagenet32")
    if "mean" not in mean_batch:
        raise DataFormatError(
            f"{mean_path}: no key 'mean'; the official train files carry the training mean"
        )
    return Dataset(x, y, 1000, "imagenet32", mean=_checked_mean(mean_path, mean_batch))


CIFAR10_HOW = (
    "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and unpack it there "
    "(data_dir may be the cifar-10-batches-py folder or its parent)"
)


def read_cifar10(
    data_dir: str | Path | None,
    split: str,
    *,
    batches: tuple[int, ...] = (1, 2, 3, 4, 5),
    limit: int | None = None,
) -> Dataset:
    """CIFAR-10 python batches: train = data_batch_<batches>, test = test_batch; labels 0..9.

    `mean` is the per-pixel mean of all five training batches (None for split="test" when
    they are absent); class names come from batches.meta when present.
    """
    batches = _checked_choice(batches, 5, limit, "cifar10")
    expected = "data_batch_1..5 and test_batch"
    folder = _require_folder(data_dir, "cifar10", expected, CIFAR10_HOW)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    stems = [f"data_batch_{b}" for b in batches] if split == "train" else ["test_batch"]
    paths = _require_batches(folder, stems, "cifar10", CIFAR10_HOW)
    x, y, _ = _read_images(paths, limit, labels_from=0, num_classes=10)

    train_paths = [_batch_path(folder, f"data_batch_{b}") for b in range(1, 6)]
    mean = None
    if all(train_paths):
        train_x = x if split == "train" and batches == (1, 2, 3, 4, 5) and limit is None else None
        if train_x is None:
            train_x, _, _ = _read_images(train_paths, None, labels_from=0, num_classes=10)
        total = train_x.reshape(len(train_x), -1).sum(0, dtype=torch.float64)
        mean = (total / len(train_x)).float()
    return Dataset(x, y, 10, "cifar10", mean=mean, class_names=_cifar10_names(folder))


def _cifar10_names(folder: Path) -> list[str] | None:
    path = _batch_path(folder, "batches.meta")
    if path is None:
        return None
    names = _read_batch(path).get("label_names")
    if names is None or len(names) != 10:
        raise DataFormatError(f"{path}: expected 'label_names' with 10 entries{REFETCH}")
    return [str(_text(name)) for name in names]
