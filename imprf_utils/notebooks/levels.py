"""Per-level summaries of experiments: accuracy, localization and kurtosis, each with its control.

Every number notebooks 00, 02, 03 and 06 plot or put in a claims table comes from here (and
from ``kurtosis`` for notebook 04, ``cavity`` for 05), so that the notebooks narrate and call.
Each localization measure is reported against random placement of the same counts
(docs/controls.md), each kurtosis against the same weights at random input positions
(Fig. 4B). ``per_level`` is the one loop over an experiment's stored levels and their masks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from imprf_utils.data import Dataset, HiddenContrast
from imprf_utils.data.clone import gaussian_probe_accuracy
from imprf_utils.measures.connections import connections_per_unit, locality_maps, near_pair_fraction
from imprf_utils.measures.preactivations import kurtosis
from imprf_utils.measures.shape import compactness_ratio, rf_width, rf_width_ratio, shuffle_positions
from imprf_utils.notebooks.kurtosis import NON_GAUSSIANITY_COLUMNS, kurtosis_rows
from imprf_utils.notebooks.runs import per_experiment
from imprf_utils.training.config import ExperimentConfig
from imprf_utils.training.experiment import Experiment, Level, load_data


def per_level(exp: Experiment, row: Callable[[Level, torch.Tensor], dict[str, Any]]) -> pd.DataFrame:
    """One row per stored level of ``exp``, in ``Experiment.stored_levels``' order: its ``method`` and
    ``level``, then the columns ``row(level, mask)`` gives for the level's first-layer mask (units, D)."""
    return pd.DataFrame(
        [dict(method=level.method, level=level.k, **row(level, exp.masks(level)[0])) for level in exp.stored_levels()]
    )


def level_summary(exp: Experiment, *, kurtosis_samples: int | None = None, control_seed: int | None = None) -> pd.DataFrame:
    """One row per stored level of each method.

    Columns: method, level (IMP rounds of the sparsity), kept (fraction of hidden
    weights), accuracy (final test accuracy), rf_width (median, pixels), rf_width_ratio
    (median width ÷ random placement; < 1 = local), component_ratio and
    neighbour_ratio (compactness ÷ random placement; > 1 = blob-like), and
    ``kurtosis.kurtosis_summary``'s non_gaussianity, non_gaussianity_shuffled and
    non_gaussianity_excess over the first ``kurtosis_samples`` test images.
    ``control_seed`` draws every random placement and shuffle (None: the network's seed, so
    the controls vary with the seed as the networks do).
    """
    control_seed = exp.config.seed if control_seed is None else control_seed
    train_ds = exp.data[0]
    shape, periodic = train_ds.image_shape, train_ds.periodic

    def localization(level: Level, mask: torch.Tensor) -> dict[str, Any]:
        metrics = exp.metrics(level)
        component, neighbour = compactness_ratio(mask, shape, periodic=periodic, seed=control_seed)
        return dict(
            kept=metrics["kept_fraction"],
            accuracy=metrics["final_accuracy"],
            rf_width=float(torch.nanmedian(rf_width(mask, shape, periodic=periodic))),
            rf_width_ratio=rf_width_ratio(mask, shape, periodic=periodic, seed=control_seed),
            component_ratio=component,
            neighbour_ratio=neighbour,
        )

    rows = per_level(exp, localization)
    kurtosis = kurtosis_rows(exp, samples=kurtosis_samples, control_seed=control_seed)
    return rows.join(kurtosis[list(NON_GAUSSIANITY_COLUMNS)])


def summarize(experiments: list[Experiment], **kwargs) -> pd.DataFrame:
    """``level_summary`` of several experiments, with columns ``data`` and ``seed``."""
    return per_experiment(level_summary, experiments, **kwargs)


def width_ratios(experiments: list[Experiment], *, control_seed: int | None = None) -> pd.DataFrame:
    """RF width ÷ random placement of the first-layer masks at every stored level (Fig. 4A's measure).

    One row per experiment and stored level: data, seed, method, level and
    ``rf_width_ratio`` (``measures.shape.rf_width_ratio``, its shuffles drawn from
    ``control_seed``, None: each network's seed; < 1 = local), equal to ``level_summary``'s column of the same
    ``control_seed``, without the other measures.
    """

    def widths(exp: Experiment) -> pd.DataFrame:
        train_ds, seed = exp.data[0], exp.config.seed if control_seed is None else control_seed
        return per_level(exp, lambda _, mask: dict(
            rf_width_ratio=rf_width_ratio(mask, train_ds.image_shape, periodic=train_ds.periodic, seed=seed)
        ))

    return per_experiment(widths, experiments)


def connection_summary(exp: Experiment, *, radius: float = 2.0, control_seed: int | None = None) -> pd.DataFrame:
    """Pellegrini & Biroli's diagnostics of the first-layer masks, one row per stored level.

    Columns: method, level; ``empty`` (share of units with no connection) and
    ``empty_null`` (its binomial expectation (1 − p)^D for the same density p);
    ``dispersion`` (variance of the connections per unit ÷ the binomial variance D p (1 − p):
    > 1 = more empty and more crowded units than chance); ``near_pairs`` (share of pairs of
    a unit's surviving inputs at most ``radius`` px apart, from the locality maps S_sc + S_dc,
    displacements wrapped on a periodic dataset's torus),
    ``near_pairs_shuffled`` (the same masks at random positions, drawn from ``control_seed``;
    None: the network's seed) and ``near_pair_ratio``.
    """
    shape, periodic = exp.data[0].image_shape, exp.data[0].periodic
    generator = torch.Generator().manual_seed(exp.config.seed if control_seed is None else control_seed)

    def diagnostics(_: Level, mask: torch.Tensor) -> dict[str, float]:
        counts = connections_per_unit(mask).double()
        inputs = mask.shape[1]
        p = float(mask.double().mean())
        near = near_pair_fraction(sum(locality_maps(mask, shape, periodic=periodic)), radius)
        shuffled = near_pair_fraction(
            sum(locality_maps(shuffle_positions(mask, generator), shape, periodic=periodic)), radius
        )
        return dict(
            empty=float((counts == 0).double().mean()),
            empty_null=(1 - p) ** inputs,
            dispersion=float(counts.var() / (inputs * p * (1 - p))) if 0 < p < 1 else float("nan"),
            near_pairs=near,
            near_pairs_shuffled=shuffled,
            near_pair_ratio=near / shuffled,
        )

    return per_level(exp, diagnostics)


def probe_accuracies(
    configs: list[ExperimentConfig], contrast: HiddenContrast, *, train_images: int = 8000, test_images: int = 4000
) -> pd.Series:
    """Per seed, the test accuracy of a Gaussian class-covariance probe at ``contrast`` on the data.

    For each config (one per seed) the probe (`clone.gaussian_probe_accuracy`, 64 principal
    components) is fitted on ``train_images`` training images and scored on ``test_images`` test
    images, both drawn at random without replacement by the config's seed from its data
    (``load_data``); the labels are whether an image's class lies in ``contrast.classes``. The
    seeds vary the probe's samples, not the dataset: the interval covers sampling, not data draws.
    """
    accuracies = {}
    for config in configs:
        generator = torch.Generator().manual_seed(config.seed)
        train, test = load_data(config)
        pick = [torch.randperm(len(ds), generator=generator)[:n] for ds, n in ((train, train_images), (test, test_images))]
        labels = [torch.isin(ds.y[i], torch.tensor(contrast.classes)) for ds, i in zip((train, test), pick)]
        accuracies[config.seed] = gaussian_probe_accuracy(train.x[pick[0]], labels[0], test.x[pick[1]], labels[1])
    return pd.Series(accuracies, name="probe_accuracy").rename_axis("seed")


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
