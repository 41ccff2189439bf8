"""Pictures of inputs, masks and weights: mask mosaics, average receptive fields, image and component
grids, locality maps, and histograms of IPR, of pixel kurtosis and of connections per unit (Redman et al.
Figs. 1-3A, Pellegrini & Biroli's diagnostics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np
import torch

from imprf_utils.measures.connections import binomial_null, connections_per_unit
from imprf_utils.measures.shape import ipr
from imprf_utils.report.marks import DATA_COLOURS

MASK_KEY = "pruned weights black, kept weights coloured"
"""The caption sentence of a mask figure (`mask_grid_figure` draws the same key as a legend)."""


def mask_images(mask: torch.Tensor, image_shape: Sequence[int]) -> np.ndarray:
    """Masks (units, C*H*W) as RGB images (units, H, W, 3): pruned black, survivors by channel.

    Three-channel data: a surviving weight lights its pixel in its channel's colour (R, G,
    B), so a pixel with all three channels kept is white (Redman et al. Fig. 1). One
    channel: survivors in a single colour.
    """
    c, h, w = image_shape
    m = mask.reshape(-1, c, h, w).float().permute(0, 2, 3, 1).cpu().numpy()
    if c == 3:
        return m
    colour = np.array([1.0, 0.78, 0.2])  # amber on black
    return m.max(axis=-1, keepdims=True) * colour


def most_connected(mask: torch.Tensor, count: int = 120) -> torch.Tensor:
    """Indices of the ``count`` units with the most surviving weights (Fig. 1's selection)."""
    return mask.sum(1).argsort(descending=True, stable=True)[:count]


MOSAIC_GAP = 0.5
"""Grey level of the one-pixel lines between the tiles of a mask mosaic (pruned is black, so tiles stay apart)."""


def tiles(images: np.ndarray, rows: int, cols: int, fill: float) -> np.ndarray:
    """Images (n, H, W, ...) tiled row-major into one image (rows*(H+1)+1, cols*(W+1)+1, ...),
    framed by one-pixel lines of ``fill``; tiles without an image (n < rows*cols) are ``fill``.

    A grid of units drawn as one image draws in a fraction of a second, where one axes a
    unit (120 of them) took seconds to lay out and save.
    """
    n, h, w = images.shape[:3]
    mosaic = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, *images.shape[3:]), fill, dtype=float)
    for i, image in enumerate(images[: rows * cols]):
        top, left = 1 + (i // cols) * (h + 1), 1 + (i % cols) * (w + 1)
        mosaic[top : top + h, left : left + w] = image
    return mosaic


def mask_mosaic(mask: torch.Tensor, image_shape: Sequence[int], rows: int, cols: int) -> np.ndarray:
    """The ``rows * cols`` most connected units' masks (`most_connected`, `mask_images`) as one
    RGB image, row-major, between grey lines (`tiles`, ``MOSAIC_GAP``)."""
    return tiles(mask_images(mask[most_connected(mask, rows * cols)], image_shape), rows, cols, MOSAIC_GAP)


def mask_key(channels: int) -> list[matplotlib.patches.Patch]:
    """Legend patches for `mask_images`' colours: pruned black; kept amber, or R, G, B by channel (white: all three)."""
    pruned = matplotlib.patches.Patch(facecolor="black", edgecolor="0.5", label="pruned")
    if channels == 3:
        kept = [matplotlib.patches.Patch(facecolor=colour, edgecolor="0.5", label=f"kept in channel {name}")
                for colour, name in (((1, 0, 0), "R"), ((0, 1, 0), "G"), ((0, 0, 1), "B"))]
        kept.append(matplotlib.patches.Patch(facecolor="white", edgecolor="0.5", label="kept in all three"))
        return [pruned, *kept]
    return [pruned, matplotlib.patches.Patch(facecolor=(1.0, 0.78, 0.2), edgecolor="0.5", label="kept")]


def mask_grid_figure(masks: Mapping[str, torch.Tensor], image_shape: Sequence[int], rows: int = 8, cols: int = 15) -> plt.Figure:
    """Side-by-side panels, one per entry of ``masks`` (title -> first-layer mask), with a key (`mask_key`) at the right."""
    fig, axes = plt.subplots(1, len(masks), figsize=(6.2 * len(masks), 3.6), squeeze=False, layout="constrained")
    for ax, (title, mask) in zip(axes[0], masks.items()):
        ax.imshow(mask_mosaic(mask, image_shape, rows, cols), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
    fig.legend(handles=mask_key(image_shape[0]), loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=9)
    return fig


def masks_and_fields_figure(
    masks: Mapping[str, torch.Tensor], fields: Mapping[str, torch.Tensor], image_shape: Sequence[int], rows: int = 8, cols: int = 15
) -> plt.Figure:
    """Fig. 1: per method (the keys of ``masks``), its mask mosaic above its average receptive field.

    Top row: the most connected units' first-layer masks (`mask_mosaic`), with a key (`mask_key`).
    Bottom row: ``fields[method]`` (`measures.shape.average_receptive_field`), one colour scale for all,
    the centre marked: where masks are local, a bright peak sits on the mark; where they are not,
    the field is low and flat.
    """
    fig, axes = plt.subplots(2, len(masks), figsize=(5.2 * len(masks), 6.4), squeeze=False, layout="constrained",
                             height_ratios=(3.6, 2.8))
    top = max(float(f.max()) for f in fields.values())
    for (title, mask), mosaic_ax, field_ax in zip(masks.items(), axes[0], axes[1]):
        mosaic_ax.imshow(mask_mosaic(mask, image_shape, rows, cols), interpolation="nearest")
        mosaic_ax.set_axis_off()
        mosaic_ax.set_title(title, fontsize=10)
        field = fields[title].cpu().numpy()
        h, w = (field.shape[0] + 1) // 2, (field.shape[1] + 1) // 2
        image = field_ax.imshow(field, cmap="magma", vmin=0, vmax=top, interpolation="nearest",
                                extent=(-w + 0.5, w - 0.5, h - 0.5, -h + 0.5))
        field_ax.plot([0], [0], marker="+", color="0.6", markersize=8)
        field_ax.set_title(f"{title}: average receptive field", fontsize=9)
        field_ax.set_xlabel("offset from the unit's centre (px)", fontsize=8)
    fig.colorbar(image, ax=axes[1].tolist(), shrink=0.9, label="share of units keeping that pixel")
    fig.legend(handles=mask_key(image_shape[0]), loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False, fontsize=9)
    return fig


def image_grid_figure(images: Mapping[str, torch.Tensor], cols: int = 8) -> plt.Figure:
    """Rows of example images (title -> (n, C, H, W)), each image scaled to its own range."""
    fig, axes = plt.subplots(len(images), cols, figsize=(1.1 * cols, 1.25 * len(images)), squeeze=False)
    for row, (title, batch) in zip(axes, images.items()):
        for ax, image in zip(row, batch[:cols]):
            image = image.float()
            image = (image - image.min()) / (image.max() - image.min() + 1e-12)
            if image.shape[0] == 1:
                ax.imshow(image[0].numpy(), cmap="gray", interpolation="nearest")
            else:
                ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(title, fontsize=9, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def component_grid_figure(panels: Mapping[str, torch.Tensor], image_shape: Sequence[int], cols: int = 8) -> plt.Figure:
    """Side-by-side grids of feature vectors (title -> (k, C*H*W)), Redman et al. Fig. 2's style.

    Each vector is drawn as an image on a diverging scale symmetric about 0 (its own
    max |w|), channels summed for colour data; rows of ``cols`` vectors, in the given order.
    """
    c, h, w = image_shape
    rows = max(-(-len(v) // cols) for v in panels.values())
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.55")  # the lines between tiles
    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 3.1 * rows / cols + 0.4), squeeze=False,
                             layout="constrained")
    for ax, (title, vectors) in zip(axes[0], panels.items()):
        images = vectors.detach().double().reshape(-1, c, h, w).sum(1).cpu().numpy()
        scaled = images / (np.abs(images).max(axis=(1, 2), keepdims=True) + 1e-12)  # each on its own scale, in [-1, 1]
        ax.imshow(np.ma.masked_invalid(tiles(scaled, rows, cols, np.nan)), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
    return fig


def locality_map_figure(maps: Mapping[str, torch.Tensor], radius: int | None = None) -> plt.Figure:
    """Pellegrini & Biroli's locality maps side by side (title -> (2H−1, 2W−1) pair counts).

    Each map is shown as the share of its pairs at each displacement d = (dy, dx) (centre:
    d = 0), on one colour scale for all panels; ``radius``: a circle of that many pixels.
    """
    fig, axes = plt.subplots(1, len(maps), figsize=(2.6 * len(maps) + 0.8, 2.9), squeeze=False, layout="constrained")
    shares = {title: m.double() / m.sum().clamp(min=1) for title, m in maps.items()}
    top = max(float(s.max()) for s in shares.values())
    for ax, (title, share) in zip(axes[0], shares.items()):
        rows, cols = share.shape
        extent = (-(cols // 2) - 0.5, cols // 2 + 0.5, rows // 2 + 0.5, -(rows // 2) - 0.5)
        image = ax.imshow(share.numpy(), cmap="magma", vmin=0, vmax=top, extent=extent, interpolation="nearest")
        if radius:
            ax.add_patch(plt.Circle((0, 0), radius, fill=False, color="w", lw=0.8, ls="--"))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("dx (px)")
    axes[0, 0].set_ylabel("dy (px)")
    fig.colorbar(image, ax=axes[0, -1], label="share of pairs")
    return fig


HISTOGRAM_COLOURS = ("#c0392b", "#2471a3", "#e67e22")


def ipr_figure(
    panels: Mapping[str, Mapping[str, torch.Tensor]],
    inputs: int,
    *,
    density: bool = False,
    colours: Sequence[str] = HISTOGRAM_COLOURS,
    xlabel: str = "IPR · D",
) -> plt.Figure:
    """Histograms of IPR·D values (D = ``inputs``): one panel per entry of ``panels``, titled by its key,
    one histogram per entry of the panel (its label in the legend, its colour from ``colours``).

    40 log-spaced bins from 1 (a vector spread evenly over every input) to D (a single
    input); dashed: 3, a spread-out Gaussian vector's IPR·D. ``density``: each histogram
    integrates to 1 (y label "density"), else counts (y label "units").
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, (title, groups) in zip(axes[0], panels.items()):
        for (label, values), colour in zip(groups.items(), colours):
            ax.hist(values.flatten().numpy(), bins=np.geomspace(1, inputs, 40), color=colour, alpha=0.6, density=density, label=label)
        ax.axvline(3, color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(title)
    axes[0, 0].set_ylabel("density" if density else "units")
    axes[0, 0].legend(frameon=False)
    fig.tight_layout()
    return fig


def pixel_kurtosis_figure(kurtosis: Mapping[str, torch.Tensor]) -> plt.Figure:
    """Histograms of each pixel's kurtosis (Pearson, over all images), one per dataset (notebook 00).

    ``kurtosis``: name → per-pixel kurtosis; the name in the legend, "data" and "clone" in
    `DATA_COLOURS`; 40 bins; dashed: 3, a Gaussian's.
    """
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for i, (label, values) in enumerate(kurtosis.items()):
        ax.hist(values.numpy(), bins=40, color=DATA_COLOURS.get(label, f"C{i}"), alpha=0.7, label=label)
    ax.axvline(3, color="k", lw=0.8, ls="--")
    ax.set_xlabel("pixel kurtosis (Pearson, all classes)")
    ax.set_ylabel("pixels")
    ax.legend(frameon=False)
    return fig


def connections_figure(masks: Mapping[str, torch.Tensor]) -> plt.Figure:
    """Pellegrini & Biroli's connections per unit: one panel per first-layer mask (units, D).

    Bars: how many units have each number of kept inputs; line: the binomial null of
    the same number of connections placed at random (``measures.connections.binomial_null``).
    """
    fig, axes = plt.subplots(1, len(masks), figsize=(3.2 * len(masks), 3), sharey=True, squeeze=False)
    for ax, (name, mask) in zip(axes[0], masks.items()):
        counts = connections_per_unit(mask)
        top = int(counts.max()) + 1
        ax.hist(counts.numpy(), bins=np.arange(top + 1) - 0.5, color="#c0392b", alpha=0.7, label="units")
        null = binomial_null(int(mask.sum()), units=mask.shape[0], inputs=mask.shape[1])[: top + 1]
        ax.plot(np.arange(len(null)), null.numpy(), color="k", lw=1, label="binomial null")
        ax.set_title(name)
        ax.set_xlabel("connections per unit")
    axes[0, 0].set_ylabel("units")
    axes[0, 0].legend(frameon=False)
    fig.tight_layout()
    return fig


def by_ipr(w: torch.Tensor) -> torch.Tensor:
    """The rows of w (units, D), most localized first (largest inverse participation ratio)."""
    return w[ipr(w).argsort(descending=True, stable=True)]
