"""Patches of the photographs that installed packages ship: the ``natural`` and ``photos`` tasks.

The photographs come with scikit-learn (china, flower), scikit-image (its bundled sample
images, no download) and matplotlib (grace_hopper); nothing is fetched from the network.

- ``natural``: grayscale patches labelled by the photograph they come from; train and test
  patches come from the two colours of a checkerboard of blocks in every photograph.
- ``photos``: four classes, real vs phase-scrambled patch × the sign of a weak global
  template. A scrambled patch keeps the second-order statistics of real patches and gets
  random phases: what tells it from a real patch is edges, a higher-order statistic, which a
  Gaussian clone does not keep; the template sign is a first-order cue the clone keeps. Train
  and test come from different photographs. ``scramble="window"`` (the default) scrambles a
  window three times the patch's side around it and keeps the window's centre; ``"circular"``
  scrambles the patch itself, which makes it periodic, a second-order cue a Gaussian clone
  keeps (docs/default_task.md: the lesson of the first photos task).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from imprf_utils.data.dataset import DEFAULT_SIZE, SPLITS, Dataset, balanced_labels, split_generator
from imprf_utils.errors import ConfigError

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
"""Photographs available offline, for both tasks."""

DEFAULT_PHOTOS = (
    "china", "flower", "astronaut", "chelsea", "coffee", "rocket", "camera", "grace_hopper"
)
"""The natural scenes the ``natural`` dataset uses unless `photos` is given."""

PHOTOS_CLASSES = ("real, +template", "real, -template", "scrambled, +template", "scrambled, -template")
"""Class c of the ``photos`` task: phase-scrambled when c ≥ 2; template sign + when c is even."""

WINDOW = 3
"""A window scramble cuts a window of WINDOW × the patch's side around the patch (twice passes the
Gaussian probe too, narrowly at 16×16: accuracy 0.545 against 0.520 for three times, seed 0)."""

SCRAMBLES = ("window", "circular")
"""How the ``photos`` task scrambles a patch: ``window_scrambled`` or ``phase_scrambled``."""

PHOTOS_VERSION = 2
"""The ``photos`` task's recipe (1: circular scramble only, test clone from training halves;
2: the ``scramble`` option, test clone from the test photographs); runs of it key on it."""

LUMINANCE = (0.2125, 0.7154, 0.0721)
"""ITU-R BT.709 weights of R, G, B in the grayscale of a colour photo."""


@functools.lru_cache(maxsize=len(PHOTOS))
def _photo(name: str) -> np.ndarray:
    """Photo `name` as shipped: uint8 (H, W) or (H, W, 3+)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    if name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        return matplotlib.image.imread(path)
    try:
        import skimage.data
    except ImportError as error:
        raise ModuleNotFoundError(
            f"photo {name!r} ships with scikit-image, which is not installed: "
            "pip install scikit-image (or choose photos among china, flower, grace_hopper)"
        ) from error
    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def photo(name: str, *, grayscale: bool = True) -> torch.Tensor:
    """Photo `name` (one of PHOTOS) as float64 (C, H, W) in [0, 1].

    grayscale: C = 1; a colour photo becomes its luminance 0.2125 R + 0.7154 G + 0.0721 B.
    Otherwise C = 3 (R, G, B); a grayscale photo has three equal channels.
    """
    image = torch.from_numpy(np.asarray(_photo(name), dtype=np.float64) / 255.0)
    if image.ndim == 3 and grayscale:
        return (image[..., :3] @ torch.tensor(LUMINANCE, dtype=torch.float64))[None]
    if image.ndim == 3:
        return image[..., :3].permute(2, 0, 1)
    return image[None] if grayscale else image[None].expand(3, -1, -1)


def check_photos(photos: tuple[str, ...], dataset: str) -> None:
    """Two or more distinct known photo names, else ConfigError."""
    unknown = [p for p in photos if p not in PHOTOS]
    if unknown or len(set(photos)) != len(photos) or len(photos) < 2:
        raise ConfigError(
            f"{dataset}: photos must name two or more distinct photos of {', '.join(PHOTOS)}; "
            f"got {photos!r}"
        )


# --------------------------------------------------------------------------- natural


def _block_parity(shape: tuple[int, int], block: int) -> torch.Tensor:
    """(rows, cols) of blocks: (r + c) mod 2 — 0 for training blocks, 1 for test blocks."""
    rows, cols = shape[0] // block, shape[1] // block
    return (torch.arange(rows)[:, None] + torch.arange(cols)[None, :]) % 2


def _blocks_of(image: torch.Tensor, block: int, *, parity: int) -> torch.Tensor:
    """The pixels of the blocks of the given checkerboard parity, flattened."""
    grid = _block_parity(image.shape, block)
    tiles = image[: grid.shape[0] * block, : grid.shape[1] * block]
    tiles = tiles.reshape(grid.shape[0], block, grid.shape[1], block).transpose(1, 2)
    return tiles[grid == parity].flatten()


def natural_dataset(
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
    check_photos(photos, "natural")
    block = 2 * size
    images = [photo(p)[0] for p in photos]
    for name, image in zip(photos, images):
        if _block_parity(image.shape, block).numel() < 2:
            raise ConfigError(
                f"natural: photo {name} {tuple(image.shape)} holds fewer than two "
                f"{block}×{block} blocks; use a smaller size"
            )
    train_pixels = [_blocks_of(image, block, parity=0) for image in images]
    mean = sum(p.mean() for p in train_pixels) / len(images)
    std = math.sqrt(sum((p**2).mean() for p in train_pixels) / len(images) - mean**2)

    generator = split_generator(seed, split)
    y = balanced_labels(DEFAULT_SIZE[split] if n is None else n, len(photos), generator)
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


# --------------------------------------------------------------------------- photos


def photo_split(photos: tuple[str, ...], seed: int) -> dict[str, tuple[str, ...]]:
    """Which photographs give the ``photos`` task's train and test patches: {"train", "test"}.

    A random round(len/4) of the photos (at least one) are test photos, drawn by the third
    child of SeedSequence(seed) (the splits' patches use the first two); the rest are train
    photos. Each tuple keeps the order of `photos`.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(len(SPLITS) + 1)[-1])
    test = set(rng.permutation(len(photos))[: max(1, round(len(photos) / 4))].tolist())
    return {
        "train": tuple(p for i, p in enumerate(photos) if i not in test),
        "test": tuple(p for i, p in enumerate(photos) if i in test),
    }


def photo_template(size: int) -> torch.Tensor:
    """The ``photos`` task's global template, (size, size) float64 of unit mean square:
    T[r, c] = √2 cos(2π (r + c) / size), one oblique wave across the patch."""
    i = torch.arange(size, dtype=torch.float64)
    return math.sqrt(2.0) * torch.cos(2 * math.pi * (i[:, None] + i[None, :]) / size)


def _own_conjugate(length: int) -> torch.Tensor:
    """Frequencies k of a length-L axis with −k ≡ k (mod L): 0, and L/2 for even L."""
    own = torch.zeros(length, dtype=torch.bool)
    own[0] = True
    if length % 2 == 0:
        own[length // 2] = True
    return own


def phase_scrambled(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image of x (n, C, H, W) with random Fourier phases and its amplitude spectrum kept.

    x' = Re F⁻¹[F[x](k) e^{iφ(k)}] per channel, φ = arg F[w] for white noise w ~ N(0, I)
    (one per image, shared by its channels so colours stay aligned), with φ = 0 at the
    frequencies that are their own conjugate ((0, 0), (0, W/2), (H/2, 0), (H/2, W/2)), so the
    mean is kept. w is real, so φ(−k) = −φ(k) and x' is real; |F[x']| = |F[x]|.
    """
    noise = torch.randn(x.shape[0], 1, *x.shape[2:], generator=generator, dtype=torch.float64)
    phase = torch.fft.fft2(noise)
    phase = phase / phase.abs().clamp_min(torch.finfo(torch.float64).tiny)
    own = _own_conjugate(x.shape[-2])[:, None] & _own_conjugate(x.shape[-1])[None, :]
    phase = torch.where(own, torch.ones_like(phase), phase)
    return torch.fft.ifft2(torch.fft.fft2(x.double()) * phase).real.to(x.dtype)


def window_scrambled(windows: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """The centre size×size of each phase-scrambled window, matched to the real centre's mean and sd.

    windows: (n, C, S, S), S ≥ size, each a real window around a patch. The window is
    scrambled as a whole (`phase_scrambled`: circular in the window, not in the patch), its
    centre cut out, and each channel of it rescaled to the mean and standard deviation of the
    real centre's channel: c' = (c − mean c) / sd c · sd r + mean r. So a scrambled patch is not
    periodic, and its first and second moments match the real patches' (a Gaussian probe cannot
    tell the two apart: `imprf_utils.data.clone.gaussian_probe_accuracy`), while its phases, and so its
    edges, are random.
    """
    top = (windows.shape[-1] - size) // 2
    centre = slice(top, top + size)
    real = windows[..., centre, centre]
    scrambled = phase_scrambled(windows, generator)[..., centre, centre]
    mean, sd = scrambled.mean((-2, -1), keepdim=True), scrambled.std((-2, -1), correction=0, keepdim=True)
    target_mean, target_sd = real.mean((-2, -1), keepdim=True), real.std((-2, -1), correction=0, keepdim=True)
    return (scrambled - mean) / sd.clamp_min(torch.finfo(sd.dtype).tiny) * target_sd + target_mean


def _patch_sums(a: torch.Tensor, size: int) -> torch.Tensor:
    """Sums of a (H, W) over every size×size window, (H − size + 1, W − size + 1), from the
    cumulative sums S (zero-padded): S[r+s, c+s] − S[r, c+s] − S[r+s, c] + S[r, c]."""
    total = torch.nn.functional.pad(a.cumsum(0).cumsum(1), (1, 0, 1, 0))
    return total[size:, size:] - total[:-size, size:] - total[size:, :-size] + total[:-size, :-size]


def patch_contrast(image: torch.Tensor, size: int) -> torch.Tensor:
    """Standard deviation of every size×size patch of image (C, H, W), over its pixels and
    channels: (H − size + 1, W − size + 1), entry (r, c) for the patch with top-left (r, c).

    sd² = S₂/m − (S₁/m)², m = C·size², S_k the patch sums of x^k over the channels.
    """
    m = image.shape[0] * size * size
    mean = _patch_sums(image.sum(0), size) / m
    return (_patch_sums((image**2).sum(0), size) / m - mean**2).clamp_min(0).sqrt()


def _standardized(image: torch.Tensor) -> torch.Tensor:
    """(image − its mean) / its standard deviation, over all pixels and channels."""
    return (image - image.mean()) / image.std(correction=0)


def photos_dataset(
    split: str,
    seed: int,
    *,
    n: int | None = None,
    size: int = 16,
    grayscale: bool = True,
    amplitude: float = 0.25,
    min_contrast: float = 0.1,
    scramble: str = "window",
    photos: tuple[str, ...] = PHOTOS,
) -> Dataset:
    """The ``photos`` task: x = P' + a·(−1)^c·T, four classes (PHOTOS_CLASSES).

    P is a size×size patch of a photograph drawn uniformly from the split's photographs
    (`photo_split(photos, seed)`), each standardized to zero mean and unit variance over its
    own pixels, at a position drawn uniformly among those whose patch has a standard deviation
    of at least `min_contrast` (`patch_contrast`: a flat patch and its scrambled twin are the
    same image, so they could only add label noise); P' = P for classes 0, 1 and the scrambled
    P for classes 2, 3; T = `photo_template(size)` with amplitude a, sign + for even c.
    C = 1 if grayscale, else 3. Labels balanced; n defaults to DEFAULT_SIZE[split].

    scramble: "window" — patches lie inside a window of side WINDOW·size centred on them
    (positions where it does not fit are not drawn, for either class), and a scrambled patch is
    `window_scrambled`: it keeps the second-order statistics of real patches. "circular" —
    `phase_scrambled(P)`: periodic, so its opposite edges correlate as neighbours do, a
    second-order cue (the task's first recipe, kept to reproduce its record).
    """
    check_photos(photos, "photos")
    if amplitude < 0 or not math.isfinite(amplitude):
        raise ConfigError(f"photos: amplitude must be a finite number ≥ 0, got {amplitude!r}")
    if size < 2 or min_contrast < 0:
        raise ConfigError(
            f"photos: size must be at least 2 pixels and min_contrast ≥ 0, got {size!r}, "
            f"{min_contrast!r}"
        )
    if scramble not in SCRAMBLES:
        raise ConfigError(f"photos: scramble must be one of {', '.join(SCRAMBLES)}, got {scramble!r}")
    side = WINDOW * size if scramble == "window" else size  # what is cut out around each patch
    border = (side - size) // 2  # the window's rows above (and columns left of) the patch
    names = photo_split(photos, seed)[split]
    images = [_standardized(photo(p, grayscale=grayscale)) for p in names]
    for name, image in zip(names, images):
        if min(image.shape[1:]) < side:
            raise ConfigError(
                f"photos: photo {name} {tuple(image.shape[1:])} is smaller than the {side}×{side} "
                f"window a {size}×{size} patch needs (scramble={scramble!r}); use a smaller size"
            )
    generator = split_generator(seed, split)
    y = balanced_labels(DEFAULT_SIZE[split] if n is None else n, 4, generator)
    source = torch.randint(len(images), (len(y),), generator=generator)
    x = torch.empty(len(y), images[0].shape[0], side, side, dtype=torch.float64)
    offsets = torch.arange(side)
    for s, image in enumerate(images):
        index = (source == s).nonzero().squeeze(1)
        contrast = patch_contrast(image, size)
        rows, cols = contrast.shape
        inside = contrast[border : rows - (side - size) + border, border : cols - (side - size) + border]
        corners = (inside >= min_contrast).nonzero()  # the windows' top-left corners
        if len(corners) == 0:
            raise ConfigError(
                f"photos: photo {names[s]} has no {size}×{size} patch with a standard deviation "
                f"of at least min_contrast={min_contrast}; lower min_contrast"
            )
        pick = corners[torch.randint(len(corners), (len(index),), generator=generator)]
        rows, cols = pick[:, :1] + offsets, pick[:, 1:] + offsets
        x[index] = image[:, rows[:, :, None], cols[:, None, :]].transpose(0, 1)
    scrambled = (y >= 2).nonzero().squeeze(1)
    if scramble == "window":
        patches = x[..., border : border + size, border : border + size].clone()
        patches[scrambled] = window_scrambled(x[scrambled], size, generator)
        x = patches
    else:
        x[scrambled] = phase_scrambled(x[scrambled], generator)
    sign = 1.0 - 2.0 * (y % 2).double()
    x += amplitude * sign[:, None, None, None] * photo_template(size)
    return Dataset(x.float(), y, 4, "photos", class_names=list(PHOTOS_CLASSES))
