"""Per-level summaries of an experiment: accuracy, localization and kurtosis, with controls.

Every number a notebook plots or puts in a claims table comes from here, so that the
notebooks narrate and call. Each localization measure is reported against random
placement of the same counts (prototype.md), each kurtosis against the same weights at
random input positions.
"""

from __future__ import annotations

import pandas as pd
import torch

from imprf_utils.data import Dataset
from imprf_utils.experiment import METHODS, Experiment
from imprf_utils.train import DeviceData
from imprf_utils.metrics import (
    compactness_ratio,
    kurtosis,
    non_gaussianity,
    rf_width,
    rf_width_ratio,
    shuffle_positions,
)


def first_layer(exp: Experiment, level: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked first-layer weights (units, D) and mask of a level."""
    model = exp.model(level)
    mask = model.masks[0][0]
    return model.weights[0][0].detach() * mask, mask


@torch.no_grad()
def first_layer_inputs(exp: Experiment, level: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """What the first Linear map sees on the test set (after BatchNorm, if any), and labels."""
    _, test_ds = exp.data
    model = exp.model(level)
    data = DeviceData.from_dataset(test_ds if limit is None else test_ds.subset(slice(0, limit)), "cpu", mean=exp.data[0].mean)
    return model.layer_input(data.inputs(slice(None)), 0)[0], data.y


def level_summary(exp: Experiment, *, kurtosis_samples: int | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per stored level of each method.

    Columns: method, level (IMP rounds of the sparsity), kept (fraction of hidden
    weights), accuracy (final test accuracy), rf_width (median, pixels), rg_ratio
    (median width ÷ random placement; < 1 = local), component_ratio and
    neighbour_ratio (compactness ÷ random placement; > 1 = blob-like), kurtosis
    (mean |κ − 3| of first-layer pre-activations per class), kurtosis_shuffled (the
    same weights at random input positions) and kurtosis_excess (the difference).
    """
    train_ds = exp.data[0]
    shape, periodic = train_ds.image_shape, train_ds.periodic
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for method in METHODS:
        for level in exp.level_names(method):
            if not exp.run.has(level):
                continue
            weight, mask = first_layer(exp, level)
            metrics = exp.metrics(level)
            x, labels = first_layer_inputs(exp, level, kurtosis_samples)
            kappa = float(torch.nanmean(non_gaussianity(x @ weight.T, labels)))
            kappa_shuffled = float(torch.nanmean(non_gaussianity(x @ shuffle_positions(weight, generator).T, labels)))
            component, neighbour = compactness_ratio(mask, shape, periodic=periodic, seed=seed)
            rows.append(
                dict(
                    method=method,
                    level=int(level.rsplit("_", 1)[1]),
                    kept=metrics["kept_fraction"],
                    accuracy=metrics["final_accuracy"],
                    rf_width=float(torch.nanmedian(rf_width(mask, shape, periodic=periodic))),
                    rg_ratio=rf_width_ratio(mask, shape, periodic=periodic, seed=seed),
                    component_ratio=component,
                    neighbour_ratio=neighbour,
                    kurtosis=kappa,
                    kurtosis_shuffled=kappa_shuffled,
                    kurtosis_excess=kappa - kappa_shuffled,
                )
            )
    return pd.DataFrame(rows)


def clone_fidelity(data: Dataset, clone: Dataset) -> pd.DataFrame:
    """Per class: how well the clone matches the data's first two moments, and pixel kurtosis.

    ``mean_error``: |μ_clone − μ_data| / |σ_data| (σ the pixel standard deviations; sampling
    noise is about 1/√n); ``cov_error``: relative Frobenius distance of the class covariances;
    ``cov_noise``: the same distance between the two halves of the data's class, the
    sampling noise a perfect clone cannot beat by much; ``kurtosis_data`` /
    ``kurtosis_clone``: mean over pixels of the Pearson kurtosis (3 for a Gaussian).
    """
    rows = []
    for c in range(data.num_classes):
        xd = data.x[data.y == c].flatten(1).double()
        xc = clone.x[clone.y == c].flatten(1).double()
        half = xd.shape[0] // 2
        cov_d, cov_c = torch.cov(xd.T), torch.cov(xc.T)
        rows.append(
            dict(
                label=c,
                n=xd.shape[0],
                mean_error=float((xc.mean(0) - xd.mean(0)).norm() / xd.std(0).norm()),
                cov_error=float((cov_c - cov_d).norm() / cov_d.norm()),
                cov_noise=float((torch.cov(xd[:half].T) - torch.cov(xd[half:].T)).norm() / cov_d.norm()),
                kurtosis_data=float(kurtosis(xd, dim=0).mean()),
                kurtosis_clone=float(kurtosis(xc, dim=0).mean()),
            )
        )
    return pd.DataFrame(rows)


def summarize(experiments: list[Experiment], **kwargs) -> pd.DataFrame:
    """``level_summary`` of several experiments, with columns ``data`` ("data"/"clone") and ``seed``."""
    tables = []
    for exp in experiments:
        table = level_summary(exp, **kwargs)
        table.insert(0, "data", "clone" if exp.config.clone else "data")
        table.insert(1, "seed", exp.config.seed)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)
