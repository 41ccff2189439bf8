"""Figures named after the papers', saved with the parameters and versions that made them."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

import imprf_utils

FIGURES = Path(os.environ.get("IMPRF_FIGURES", Path(imprf_utils.__file__).resolve().parent.parent / "figures"))
METHOD_COLOURS = {"imp": "#c0392b", "oneshot": "#2471a3", "random": "#7f8c8d"}
METHOD_LABELS = {"imp": "IMP", "oneshot": "oneshot", "random": "random"}
AXIS_LABELS = {
    "kept": "fraction of hidden weights kept",
    "accuracy": "test accuracy",
    "rf_width": "median RF width (px)",
    "rg_ratio": "RF width ÷ random placement",
    "component_ratio": "largest component ÷ random",
    "neighbour_ratio": "pixels with a neighbour ÷ random",
    "kurtosis": "mean |κ − 3|",
    "kurtosis_shuffled": "mean |κ − 3|, weights at random pixels",
    "kurtosis_excess": "|κ − 3| − shuffled control",
    "train_fraction": "fraction of the training set",
    "near_pair_ratio": "near pairs ÷ random placement",
    "dispersion": "connections per unit: variance ÷ binomial",
}


def provenance(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters, package versions and git commit, stored beside every figure."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=FIGURES.parent, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "parameters": dict(params),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "matplotlib": matplotlib.__version__,
        },
        "git_commit": commit,
    }


def save_figure(fig: plt.Figure, dataset: str, name: str, params: Mapping[str, Any], root: str | Path = FIGURES) -> Path:
    """Write ``<root>/<dataset>/<name>.png`` and ``.pdf`` and a ``.json`` of provenance; return the PNG path."""
    folder = Path(root) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    fig.savefig(png, dpi=120, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(folder / f"{name}.pdf", bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    (folder / f"{name}.json").write_text(json.dumps(provenance(params), indent=1, default=str))
    return png


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


def plot_mask_grid(ax_grid: np.ndarray, mask: torch.Tensor, image_shape: Sequence[int]) -> None:
    """Draw the most connected units' masks into a grid of axes, row-major."""
    units = most_connected(mask, ax_grid.size)
    images = mask_images(mask[units], image_shape)
    for ax, image in zip(ax_grid.flat, images):
        ax.imshow(image, interpolation="nearest")
    for ax in ax_grid.flat:
        ax.set_axis_off()


def mask_grid_figure(masks: Mapping[str, torch.Tensor], image_shape: Sequence[int], rows: int = 8, cols: int = 15) -> plt.Figure:
    """Side-by-side panels, one per entry of ``masks`` (title -> first-layer mask)."""
    fig = plt.figure(figsize=(6.2 * len(masks), 3.6), layout="constrained")
    for subfig, (title, mask) in zip(np.atleast_1d(fig.subfigures(1, len(masks))), masks.items()):
        axes = subfig.subplots(rows, cols, gridspec_kw=dict(wspace=0.06, hspace=0.06))
        plot_mask_grid(axes, mask, image_shape)
        subfig.suptitle(title, fontsize=10)
    return fig


def band(ax: plt.Axes, table: pd.DataFrame, x: str, y: str, *, by: str = "method", log_x: bool = False) -> None:
    """Mean line with a min-max band over seeds, one line per value of ``by`` (Fig. 4's style)."""
    for key, group in table.groupby(by, sort=False):
        stats = group.groupby(x)[y].agg(["mean", "min", "max"]).sort_index()
        (line,) = ax.plot(stats.index, stats["mean"], marker="o", ms=3, color=METHOD_COLOURS.get(key), label=METHOD_LABELS.get(key, key))
        ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.2, lw=0)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(AXIS_LABELS.get(y, y))
    ax.legend(frameon=False)


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
    fig = plt.figure(figsize=(3.1 * len(panels), 3.1 * rows / cols + 0.4), layout="constrained")
    for subfig, (title, vectors) in zip(np.atleast_1d(fig.subfigures(1, len(panels))), panels.items()):
        axes = subfig.subplots(rows, cols, squeeze=False, gridspec_kw=dict(wspace=0.05, hspace=0.05))
        images = vectors.detach().double().reshape(-1, c, h, w).sum(1).cpu().numpy()
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, image in zip(axes.flat, images):
            scale = np.abs(image).max() + 1e-12
            ax.imshow(image, cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
        subfig.suptitle(title, fontsize=10)
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
