"""Datasets of the suite behind one entry point, `load_dataset(name, ...)`.

Generated (deterministic per seed; train and test are disjoint draws of one seed):

- ``nlgp`` — Ingrosso & Goldt's nonlinear Gaussian process; classes differ in correlation
  length ξ and/or gain g (`imprf_utils.synthetic.nlgp_images`).
- ``skewed_texture`` — class template × sign of a skewed texture; its Gaussian clone keeps only
  the template (`imprf_utils.synthetic.skewed_texture_images`, prototype task (e)).
- ``natural`` — grayscale patches of photographs shipped inside installed packages
  (scikit-learn, scikit-image, matplotlib), labelled by photo.

Read from the official files in ``data_dir`` (never downloaded, never replaced by another set):

- ``imagenet32`` — Downsampled ImageNet 32×32 (Chrabaszcz, Loshchilov & Hutter 2017):
  ``train_data_batch_1..10`` and ``val_data`` as pickles or ``.npz``.
- ``cifar10`` — the CIFAR-10 python batches ``data_batch_1..5``, ``test_batch``, ``batches.meta``.

Pickles are read by an unpickler that can only build plain containers and numpy arrays; any
other global (``os.system``, ``builtins.eval`` …) raises `UnsafePickleError` before it runs.
`gaussian_clone` (from `imprf_utils.clone`) is re-exported here.
"""

from __future__ import annotations

import codecs
import functools
import inspect
import math
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from imprf_utils.errors import ConfigError, DataFormatError, UnsafePickleError
from imprf_utils.synthetic import SKEWED_TEXTURE_CLASSES, nlgp_images, skewed_texture_images

DATASETS = ("nlgp", "skewed_texture", "natural", "imagenet32", "cifar10")
SPLITS = ("train", "test")
DEFAULT_SIZE = {"train": 40_000, "test": 10_000}
"""Number of images a generated dataset has when the option ``n`` is not given."""
REFETCH = "; the file is not in the official format — download and unpack it again"
"""Ends every message about a malformed data file: what to do about it."""


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
        imagenet32:     batches=(1, ..., 10), limit=None
        cifar10:        batches=(1, ..., 5), limit=None
    n defaults to DEFAULT_SIZE[split] (40,000 train, 10,000 test).
    """
    check_options(name, options)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    build = _GENERATED.get(name) or _FROM_FILES[name]
    if name in _GENERATED:
        return build(split, seed, **options)
    return build(data_dir, split, **options)


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
        _nlgp_classes(values["xi"], values["gain"])
    elif name == "natural":
        _checked_photos(values["photos"])


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


# --------------------------------------------------------------------------- generated data


def _split_generator(seed: int, split: str) -> torch.Generator:
    """A CPU generator for one split: SeedSequence(seed).spawn(2)[0 train / 1 test]."""
    child = np.random.SeedSequence(seed).spawn(len(SPLITS))[SPLITS.index(split)]
    return torch.Generator().manual_seed(int(child.generate_state(1, dtype=np.uint64)[0]))


def _balanced_labels(n: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """n labels, each class n // K or n // K + 1 times, in random order."""
    if n < num_classes:
        raise ConfigError(f"n={n} is smaller than the number of classes ({num_classes})")
    return (torch.arange(n) % num_classes)[torch.randperm(n, generator=generator)]


def _per_class(value: float | tuple[float, ...], name: str) -> tuple[float, ...]:
    """A number or a sequence of positive numbers as a tuple of floats."""
    values = tuple(float(v) for v in value) if isinstance(value, (tuple, list)) else (float(value),)
    if not values or min(values) <= 0:
        raise ConfigError(f"nlgp: {name} must be positive, one number or one per class: {value!r}")
    return values


def _nlgp_classes(
    xi: float | tuple[float, ...], gain: float | tuple[float, ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(ξ_c), (g_c) for each class c; a scalar is shared by all classes. Two or more classes."""
    xis, gains = _per_class(xi, "xi"), _per_class(gain, "gain")
    num_classes = max(len(xis), len(gains))
    if num_classes < 2 or {len(xis), len(gains)} - {1, num_classes}:
        raise ConfigError(
            f"nlgp needs two or more classes: give xi and/or gain as tuples of one length "
            f"(got xi={xi!r}, gain={gain!r})"
        )
    return xis * (num_classes // len(xis)), gains * (num_classes // len(gains))


def _nlgp(
    split: str,
    seed: int,
    *,
    n: int | None = None,
    xi: float | tuple[float, ...] = (1.0, 2.0, 3.0, 4.0),
    gain: float | tuple[float, ...] = 10.0,
    size: int = 16,
    periodic: bool = True,
) -> Dataset:
    """NLGP classes (ξ_c, g_c): a scalar xi or gain is shared by all classes."""
    xis, gains = _nlgp_classes(xi, gain)
    num_classes = len(xis)
    generator = _split_generator(seed, split)
    y = _balanced_labels(DEFAULT_SIZE[split] if n is None else n, num_classes, generator)
    x = torch.empty(len(y), 1, size, size)
    for c in range(num_classes):
        index = (y == c).nonzero().squeeze(1)
        x[index] = nlgp_images(
            len(index), size=size, xi=xis[c], gain=gains[c], periodic=periodic, generator=generator
        )
    names = [f"xi={a:g}, gain={g:g}" for a, g in zip(xis, gains)]
    return Dataset(x, y, num_classes, "nlgp", class_names=names, periodic=periodic)


def _skewed_texture(
    split: str,
    seed: int,
    *,
    n: int | None = None,
    sigma: float = 1.0,
    amplitude: float = 0.25,
    xi: float = 2.0,
    size: int = 16,
) -> Dataset:
    """Four classes: template T_(c mod 2) × sign of a log-normal texture (see synthetic.py)."""
    if sigma <= 0 or xi <= 0:
        raise ConfigError(f"skewed_texture: sigma and xi must be positive, got {sigma}, {xi}")
    generator = _split_generator(seed, split)
    y = _balanced_labels(DEFAULT_SIZE[split] if n is None else n, 4, generator)
    x = skewed_texture_images(
        y, size=size, sigma=sigma, amplitude=amplitude, xi=xi, generator=generator
    )
    return Dataset(
        x, y, 4, "skewed_texture", class_names=list(SKEWED_TEXTURE_CLASSES), periodic=True
    )


PHOTOS = (
    # sklearn.datasets.load_sample_image
    "china", "flower",
    # skimage.data; "motorcycle" is the left view of stereo_motorcycle
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "motorcycle", "camera", "brick", "grass", "gravel", "moon", "coins", "clock",
    "cell", "text", "page",
    # matplotlib sample data
    "grace_hopper",
)
"""Photographs available offline for the ``natural`` dataset."""

DEFAULT_PHOTOS = (
    "china", "flower", "astronaut", "chelsea", "coffee", "rocket", "camera", "grace_hopper"
)
"""The natural scenes the ``natural`` dataset uses unless `photos` is given."""


@functools.lru_cache(maxsize=len(PHOTOS))
def _photo(name: str) -> torch.Tensor:
    """Photo `name` as a grayscale float64 (H, W) tensor in [0, 1].

    Colour photos become their luminance 0.2125 R + 0.7154 G + 0.0721 B (ITU-R BT.709).
    """
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        image = load_sample_image(f"{name}.jpg")
    elif name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        image = matplotlib.image.imread(path)
    else:
        import skimage.data

        if name == "motorcycle":
            image = skimage.data.stereo_motorcycle()[0]
        else:
            image = getattr(skimage.data, name)()
    image = torch.from_numpy(np.asarray(image, dtype=np.float64) / 255.0)
    if image.ndim == 3:
        image = image[..., :3] @ torch.tensor([0.2125, 0.7154, 0.0721], dtype=torch.float64)
    return image


def _checked_photos(photos: tuple[str, ...]) -> None:
    """Two or more known photo names (one class each), else ConfigError."""
    unknown = [p for p in photos if p not in PHOTOS]
    if unknown or len(photos) < 2:
        raise ConfigError(
            f"natural: photos must name two or more of {', '.join(PHOTOS)}; got {photos!r}"
        )


def _block_parity(shape: tuple[int, int], block: int) -> torch.Tensor:
    """(rows, cols) of blocks: (r + c) mod 2 — 0 for training blocks, 1 for test blocks."""
    rows, cols = shape[0] // block, shape[1] // block
    return (torch.arange(rows)[:, None] + torch.arange(cols)[None, :]) % 2


def _natural(
    split: str,
    seed: int,
    *,
    n: int | None = None,
    size: int = 16,
    photos: tuple[str, ...] = DEFAULT_PHOTOS,
) -> Dataset:
    """Random size×size grayscale patches, an equal number from each photo; label = photo index.

    Each photo is cut into blocks of side 2·size, coloured like a checkerboard: training patches
    lie inside the even blocks, test patches inside the odd ones, so no pixel is shared between
    the splits. Pixels are standardized with the mean and standard deviation of the training
    blocks (each photo weighted equally, as the classes are), the same numbers for both splits.
    """
    _checked_photos(photos)
    block = 2 * size
    images = [_photo(p) for p in photos]
    for name, image in zip(photos, images):
        if _block_parity(image.shape, block).numel() < 2:
            raise ConfigError(
                f"natural: photo {name} {tuple(image.shape)} holds fewer than two "
                f"{block}×{block} blocks; use a smaller size"
            )
    train_pixels = [_blocks_of(image, block, parity=0) for image in images]
    mean = sum(p.mean() for p in train_pixels) / len(images)
    std = math.sqrt(sum((p**2).mean() for p in train_pixels) / len(images) - mean**2)

    generator = _split_generator(seed, split)
    y = _balanced_labels(DEFAULT_SIZE[split] if n is None else n, len(photos), generator)
    x = torch.empty(len(y), 1, size, size)
    offsets = torch.arange(size)
    for c, image in enumerate(images):
        index = (y == c).nonzero().squeeze(1)
        parity = _block_parity(image.shape, block)
        blocks = (parity == SPLITS.index(split)).nonzero()
        pick = blocks[torch.randint(len(blocks), (len(index),), generator=generator)]
        top, left = (pick * block + torch.randint(size + 1, (len(index), 2), generator=generator)).T
        rows, cols = top[:, None] + offsets, left[:, None] + offsets
        x[index, 0] = ((image[rows[:, :, None], cols[:, None, :]] - mean) / std).float()
    return Dataset(x, y, len(photos), "natural", class_names=list(photos))


def _blocks_of(image: torch.Tensor, block: int, *, parity: int) -> torch.Tensor:
    """The pixels of the blocks of the given checkerboard parity, flattened."""
    grid = _block_parity(image.shape, block)
    tiles = image[: grid.shape[0] * block, : grid.shape[1] * block]
    tiles = tiles.reshape(grid.shape[0], block, grid.shape[1], block).transpose(1, 2)
    return tiles[grid == parity].flatten()


# --------------------------------------------------------------------------- official files


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


def _imagenet32(
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


def _cifar10(
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


_GENERATED: dict[str, Callable[..., Dataset]] = {
    "nlgp": _nlgp,
    "skewed_texture": _skewed_texture,
    "natural": _natural,
}
_FROM_FILES: dict[str, Callable[..., Dataset]] = {"imagenet32": _imagenet32, "cifar10": _cifar10}

# Re-exported last: clone.py needs Dataset, defined above.
from imprf_utils.clone import gaussian_clone  # noqa: E402
