"""Per-level summaries of an experiment: accuracy, localization and kurtosis, with controls.

Every number a notebook plots or puts in a claims table comes from here, so that the
notebooks narrate and call. Each localization measure is reported against random
placement of the same counts (prototype.md), each kurtosis against the same weights at
random input positions, and each cavity-score trend with |W| controlled (partial rank
correlation given |W|, comparison within |W| bins).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
import pandas as pd
import torch

from imprf_utils.data import Dataset
from imprf_utils.experiment import Experiment
from imprf_utils.models import MaskedFCN
from imprf_utils.train import DeviceData
from imprf_utils.metrics import (
    cavity_scores,
    class_kurtosis,
    compactness_ratio,
    connections_per_unit,
    kurtosis,
    locality_maps,
    near_pair_fraction,
    non_gaussianity,
    partial_spearman,
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
    for method, level in exp.stored_levels():
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


def per_experiment(table: Callable[..., pd.DataFrame], experiments: list[Experiment], **kwargs) -> pd.DataFrame:
    """``table(exp, **kwargs)`` of several experiments stacked, with columns ``data`` ("data"/"clone") and ``seed``."""
    tables = []
    for exp in experiments:
        rows = table(exp, **kwargs)
        rows.insert(0, "data", "clone" if exp.config.clone else "data")
        rows.insert(1, "seed", exp.config.seed)
        tables.append(rows)
    return pd.concat(tables, ignore_index=True)


def summarize(experiments: list[Experiment], **kwargs) -> pd.DataFrame:
    """``level_summary`` of several experiments, with columns ``data`` and ``seed``."""
    return per_experiment(level_summary, experiments, **kwargs)


def learning_curves(experiments: list[Experiment], level: str = "level_0") -> pd.DataFrame:
    """The stored learning curve of ``level`` of each experiment, one row per evaluation.

    Columns: data ("data"/"clone"), seed, step, train_loss (mean since the previous
    evaluation), test_accuracy.
    """
    tables = []
    for exp in experiments:
        m = exp.metrics(level)
        tables.append(pd.DataFrame({
            "data": "clone" if exp.config.clone else "data",
            "seed": exp.config.seed,
            "step": m["steps"],
            "train_loss": m["train_loss"],
            "test_accuracy": m["test_accuracy"],
        }))
    return pd.concat(tables, ignore_index=True)


def connection_summary(exp: Experiment, *, radius: float = 2.0, seed: int = 0) -> pd.DataFrame:
    """Pellegrini & Biroli's diagnostics of the first-layer masks, one row per stored level.

    Columns: method, level; ``empty`` (share of units with no connection) and
    ``empty_null`` (its binomial expectation (1 − p)^D for the same density p);
    ``dispersion`` (variance of the connections per unit ÷ the binomial variance D p (1 − p):
    > 1 = more empty and more crowded units than chance); ``near_pairs`` (share of pairs of
    a unit's surviving inputs at most ``radius`` px apart, from the locality maps S_sc + S_dc),
    ``near_pairs_shuffled`` (the same masks at random positions) and ``near_pair_ratio``.
    """
    shape = exp.data[0].image_shape
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for method, level in exp.stored_levels():
        mask = exp.masks(level)[0]
        counts = connections_per_unit(mask).double()
        inputs = mask.shape[1]
        p = float(mask.double().mean())
        near = near_pair_fraction(sum(locality_maps(mask, shape)), radius)
        shuffled = near_pair_fraction(sum(locality_maps(shuffle_positions(mask, generator), shape)), radius)
        rows.append(dict(
            method=method,
            level=_rounds_of(level),
            empty=float((counts == 0).double().mean()),
            empty_null=(1 - p) ** inputs,
            dispersion=float(counts.var() / (inputs * p * (1 - p))) if 0 < p < 1 else float("nan"),
            near_pairs=near,
            near_pairs_shuffled=shuffled,
            near_pair_ratio=near / shuffled,
        ))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Fig. 4B: the kurtosis itself, per level
# --------------------------------------------------------------------------------------


def _rounds_of(level: str) -> int:
    """IMP rounds of a level's sparsity: "level_7", "oneshot_7", "random_7" -> 7."""
    return int(level.rsplit("_", 1)[1])


def _test_data(exp: Experiment, samples: int | slice | None) -> DeviceData:
    """The test images ``samples`` (first n, a slice of rows, or all) as the network's input."""
    _, test_ds = exp.data
    if samples is not None:
        test_ds = test_ds.subset(slice(0, samples) if isinstance(samples, int) else samples)
    return DeviceData.from_dataset(test_ds, "cpu", mean=exp.data[0].mean)


def split_half_se(first: Sequence[float], second: Sequence[float]) -> float:
    """Standard error of a statistic of the whole test set, from its values on two halves.

    ``first[s]``, ``second[s]``: the statistic on the two halves of the test images, one
    pair per seed. For a statistic that is about the mean of its half-sample values,
    Var(whole) ≈ Var(half) / 2 and E[(a − b)²] = 2 Var(half), so
    SE = sqrt(mean_s (a_s − b_s)² / 4). Heavy-tailed data make kurtosis-based statistics
    far noisier than the Gaussian √(24/n); this measures their noise on the data at hand.
    """
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"split_half_se: need two equal, non-empty sets of values; got {a.shape} and {b.shape}")
    return float(np.sqrt(np.mean((a - b) ** 2) / 4))


@torch.no_grad()
def kurtosis_summary(
    experiments: list[Experiment],
    *,
    samples: int | slice | None = None,
    levels: Collection[int] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Kurtosis of first-layer pre-activations at every stored level, with its control (Fig. 4B).

    One row per experiment and stored level (only those at ``levels`` IMP rounds of
    sparsity, if given), columns data ("data"/"clone"), seed, method, level, kept and,
    for h = x (W ⊙ M)ᵀ over the test images ``samples`` (an int: the first so many; a
    slice: those rows, e.g. one half for ``split_half_se``; None: all):

    - ``kurtosis_mean``: mean over units of (1/K) Σ_c κ_c(h_i), the y axis of Redman et
      al. Fig. 4B (3 for a Gaussian); units with every weight pruned (constant h) left out;
    - ``kurtosis``: mean over units of (1/K) Σ_c |κ_c(h_i) − 3| (non-Gaussianity);
    - ``kurtosis_shuffled``: the same with each unit's weights at random input positions
      (``shuffle_positions``), and ``kurtosis_excess`` = kurtosis − kurtosis_shuffled.

    With all levels and an int ``samples``, the last three equal ``level_summary``'s
    columns of the same name with ``kurtosis_samples=samples`` (same shuffles: one
    generator per experiment seeded with ``seed``, drawn level by level in the same
    order), without its localization measures, and each network is loaded once.
    """
    rows = []
    for exp in experiments:
        generator = torch.Generator().manual_seed(seed)
        data = _test_data(exp, samples)
        inputs = data.inputs(slice(None))
        for method, level in exp.stored_levels():
            if levels is not None and _rounds_of(level) not in levels:
                continue
            model = exp.model(level)
            weight = model.weights[0][0] * model.masks[0][0]
            x = model.layer_input(inputs, 0)[0]
            per_class = class_kurtosis(x @ weight.T, data.y)  # (classes, units)
            kappa = float(torch.nanmean(torch.nanmean((per_class - 3).abs(), dim=0)))
            shuffled = float(torch.nanmean(non_gaussianity(x @ shuffle_positions(weight, generator).T, data.y)))
            rows.append(
                dict(
                    data="clone" if exp.config.clone else "data",
                    seed=exp.config.seed,
                    method=method,
                    level=_rounds_of(level),
                    kept=exp.metrics(level)["kept_fraction"],
                    kurtosis_mean=float(torch.nanmean(torch.nanmean(per_class, dim=0))),
                    kurtosis=kappa,
                    kurtosis_shuffled=shuffled,
                    kurtosis_excess=kappa - shuffled,
                )
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Fig. 5B-C: cavity scores of the rewind weights, grouped by the IMP round that removes them
# --------------------------------------------------------------------------------------


def rewind_model(exp: Experiment, level: str) -> MaskedFCN:
    """The rewind state θ(t_rewind) under the masks of ``level``, on the CPU, in eval mode.

    With ``level = f"level_{n-1}"`` this is the network θ(t_rewind) ⊙ m(n−1) that IMP
    round n starts from, on which Redman et al. Fig. 5C computes cavity scores.
    """
    return exp.build_model(exp.run.load("level_0", "rewind"), exp.run.load(level, "masks")).eval()


@torch.no_grad()
def rewind_cavity_scores(
    exp: Experiment, level: str, *, samples: int | slice | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cavity scores of the first layer of θ(t_rewind) ⊙ m(level), and the rewind weights.

    Returns (scores, weight), each (units, D): ``metrics.cavity_scores`` per class and
    averaged over classes, with x the first-layer input of the test images ``samples``
    (an int: the first so many; a slice: those rows; None: all) as the rewind network's
    first Linear map sees it; NaN where the mask of ``level`` has pruned the weight.
    ``weight`` is θ(t_rewind) unmasked.
    """
    model = rewind_model(exp, level)
    data = _test_data(exp, samples)
    x = model.layer_input(data.inputs(slice(None)), 0)[0]
    weight, mask = model.weights[0][0].detach(), model.masks[0][0]
    return cavity_scores(weight, x, mask=mask, labels=data.y), weight


def cavity_by_removal_round(
    exp: Experiment, *, levels: Collection[int] | None = None, samples: int | slice | None = None
) -> pd.DataFrame:
    """Per-weight cavity scores of the first layer at mask levels k, with each weight's removal round.

    One row per mask level k (default 0..rounds) and first-layer weight still present at
    level k: ``level`` (k; the scores are those of θ(t_rewind) ⊙ m(k), the network IMP
    round k+1 starts from; k = 0 is the dense rewind network of Fig. 5B),
    ``removal_round`` (1..rounds, rounds+1 for the survivors of every round),
    ``abs_weight`` (|θ(t_rewind)|, the magnitude the |W| control conditions on) and
    ``score`` (NaN where undefined, see ``cavity_scores``), from the test images
    ``samples`` (see ``rewind_cavity_scores``).
    """
    removal = exp.removal_round(0)
    if levels is None:
        levels = list(range(exp.config.rounds + 1))
    tables = []
    for k in levels:
        scores, weight = rewind_cavity_scores(exp, f"level_{k}", samples=samples)
        present = removal > k
        tables.append(
            pd.DataFrame(
                dict(
                    level=k,
                    removal_round=removal[present].numpy(),
                    abs_weight=weight[present].abs().double().numpy(),
                    score=scores[present].numpy(),
                )
            )
        )
    return pd.concat(tables, ignore_index=True)


def cavity_tables(experiments: list[Experiment], **kwargs) -> pd.DataFrame:
    """``cavity_by_removal_round`` of several experiments, with columns ``data`` and ``seed``."""
    return per_experiment(cavity_by_removal_round, experiments, **kwargs)


def removal_magnitude_control(table: pd.DataFrame) -> dict[str, float]:
    """Rank correlations of one set of weights (rows of a ``cavity_by_removal_round`` table).

    ``rho_round_weight``: Spearman ρ(removal round, |W|), how much magnitude alone
    predicts removal; ``rho_score_round``: ρ(cavity score, removal round), the raw
    trend of Fig. 5B (< 0: early-removed weights score higher); ``partial_score_round``:
    the same given |W| (``metrics.partial_spearman``), the part of the trend magnitude
    does not explain. Rows with a NaN score are left out of all three; all three are
    NaN when a column is constant (e.g. only survivors are left after the last round).
    """
    t = table.dropna(subset=["score"])
    columns = ["score", "removal_round", "abs_weight"]
    if (t[columns].nunique() < 2).any():
        return dict.fromkeys(("rho_round_weight", "rho_score_round", "partial_score_round"), float("nan"))
    ranks = t[columns].rank()
    r = ranks.corr()
    return dict(
        rho_round_weight=float(r.loc["removal_round", "abs_weight"]),
        rho_score_round=float(r.loc["score", "removal_round"]),
        partial_score_round=partial_spearman(
            *(torch.tensor(t[c].to_numpy(dtype=float)) for c in ("score", "removal_round", "abs_weight"))
        ),
    )


def cavity_within_magnitude_bins(
    table: pd.DataFrame, *, split: int, bins: int = 10, min_count: int = 20
) -> pd.DataFrame:
    """Mean cavity score of early- vs late-removed weights within quantile bins of |W|.

    ``table``: rows of one set of weights (``cavity_by_removal_round`` at one level, one
    seed). Early = removal_round ≤ ``split``, late = removal_round > ``split`` (survivors
    included). The weights are cut into ``bins`` equally populated bins of abs_weight;
    one row per bin: bin, weight_low, weight_high (its |W| range), early_mean,
    early_count, late_mean, late_count, difference (early − late; NaN when either
    group has fewer than ``min_count`` weights with a defined score). Inside a bin
    magnitude is nearly constant, so a difference there is not magnitude's doing.
    """
    t = table.dropna(subset=["score"]).copy()
    t["bin"] = pd.qcut(t.abs_weight, bins, labels=False, duplicates="drop")
    t["early"] = t.removal_round <= split
    rows = []
    for b, group in t.groupby("bin", sort=True):
        early, late = group.score[group.early], group.score[~group.early]
        difference = early.mean() - late.mean() if min(len(early), len(late)) >= min_count else float("nan")
        rows.append(
            dict(
                bin=int(b),
                weight_low=float(group.abs_weight.min()),
                weight_high=float(group.abs_weight.max()),
                early_mean=float(early.mean()) if len(early) else float("nan"),
                early_count=len(early),
                late_mean=float(late.mean()) if len(late) else float("nan"),
                late_count=len(late),
                difference=float(difference),
            )
        )
    return pd.DataFrame(rows)
