"""Redman et al. Fig. 5: cavity scores of the rewind weights, grouped by the IMP round that removes them.

IMP removes small weights, and a weight's cavity score depends on its magnitude too, so a
trend of the score with the removal round can be magnitude's doing. The control here is
matched pairs: weights of (nearly) equal rewind magnitude |θ(t_rewind)|, one removed
earlier than the other (`matched_pair_difference`). Its null is oneshot's pruning order
(`oneshot_removal_round`): the same groups cut by the dense trained |W| instead of by
IMP's rounds.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch

from imprf_utils.measures.preactivations import cavity_scores
from imprf_utils.notebooks.runs import per_experiment
from imprf_utils.training.experiment import DENSE, Experiment


@torch.no_grad()
def rewind_cavity_scores(
    exp: Experiment, level: tuple[str, int], *, samples: int | slice | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cavity scores of the first layer of θ(t_rewind) ⊙ m(level), and the rewind weights.

    Returns (scores, weight), each (units, D): ``measures.preactivations.cavity_scores`` per class and
    averaged over classes, with x the first-layer input of the test images ``samples``
    (an int: the first so many; a slice: those rows; None: all) as the rewind network's
    first Linear map sees it; NaN where the mask of ``level`` has pruned the weight.
    ``weight`` is θ(t_rewind) unmasked.
    """
    rewind = exp.load(DENSE, "rewind")
    model = exp.build_model(rewind, exp.load(level, "masks")).eval()  # `Experiment.rewind_model`: θ(t_rewind) ⊙ m(level)
    data = exp.test_inputs(samples)
    x = model.layer_input(data.inputs(slice(None)), 0)[0]
    weight = rewind["weights.0"][0]  # the stored state keeps θ(t_rewind) unmasked
    return cavity_scores(weight, x, mask=model.masks[0][0], labels=data.y), weight


@torch.no_grad()
def oneshot_removal_round(exp: Experiment) -> torch.Tensor:
    """Oneshot's pruning order of the first layer, cut into IMP's removal rounds (the null of Fig. 5).

    Oneshot pruning removes weights by |W| of the dense *trained* network, in one go. Sort
    the first-layer weights by that magnitude (ascending, ties in index order) and cut the
    order into groups of the sizes of IMP's removal rounds n_1, …, n_rounds and its
    survivors n_(rounds+1): the k-th group gets round k. So the weights with a oneshot
    round > k are the ones oneshot pruning keeps at IMP level k's count
    (``pruning.top_magnitude_masks``, up to ties), and round 1 is IMP's round 1 exactly
    (both prune the dense trained weights by magnitude). Returns int64 of the layer's shape.
    """
    imp = exp.removal_round(0)
    trained = exp.model(DENSE).weights[0][0].abs().flatten()
    sizes = torch.bincount(imp.flatten(), minlength=exp.config.rounds + 2)[1:]
    rounds = torch.repeat_interleave(torch.arange(1, sizes.numel() + 1), sizes)
    order = torch.argsort(trained, stable=True)
    oneshot = torch.empty_like(rounds)
    oneshot[order] = rounds
    return oneshot.view_as(imp)


def cavity_by_removal_round(
    exp: Experiment, *, levels: Collection[int] | None = None, samples: int | slice | None = None
) -> pd.DataFrame:
    """Per-weight cavity scores of the first layer at mask levels k, with each weight's removal round.

    One row per mask level k (default 0..rounds) and first-layer weight still present at
    level k: ``level`` (k; the scores are those of θ(t_rewind) ⊙ m(k), the network IMP
    round k+1 starts from; k = 0 is the dense rewind network of Fig. 5B),
    ``removal_round`` (1..rounds, rounds+1 for the survivors of every round),
    ``oneshot_round`` (the weight's group in oneshot's order, ``oneshot_removal_round``),
    ``abs_weight`` (|θ(t_rewind)|, the magnitude the pairs are matched on) and
    ``score`` (NaN where undefined, see ``cavity_scores``), from the test images
    ``samples`` (see ``rewind_cavity_scores``).
    """
    removal = exp.removal_round(0)
    oneshot = oneshot_removal_round(exp)
    if levels is None:
        levels = list(range(exp.config.rounds + 1))
    tables = []
    for k in levels:
        scores, weight = rewind_cavity_scores(exp, ("imp", k), samples=samples)
        present = removal > k
        tables.append(
            pd.DataFrame(
                dict(
                    level=k,
                    removal_round=removal[present].numpy(),
                    oneshot_round=oneshot[present].numpy(),
                    abs_weight=weight[present].abs().double().numpy(),
                    score=scores[present].numpy(),
                )
            )
        )
    return pd.concat(tables, ignore_index=True)


def cavity_tables(experiments: list[Experiment], **kwargs) -> pd.DataFrame:
    """``cavity_by_removal_round`` of several experiments, with columns ``data`` and ``seed``."""
    return per_experiment(cavity_by_removal_round, experiments, **kwargs)


def removal_group_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean cavity score of each removal-round group (Figs. 5B-C), per network and mask level.

    ``table``: ``cavity_tables`` rows. One row per (data, seed, level, removal_round):
    ``score`` = the mean of the group's defined (non-NaN) scores.
    """
    keys = ["data", "seed", "level", "removal_round"]
    return table.groupby(keys, sort=True).score.mean().reset_index()


def matched_pair_difference(
    abs_weight: npt.ArrayLike, removal_round: npt.ArrayLike, score: npt.ArrayLike, *, tolerance: float
) -> tuple[float, int]:
    """Mean cavity-score difference of matched pairs, earlier-removed minus later-removed.

    The pairs are every (a, b) with round_a < round_b and magnitudes equal within a
    relative ``tolerance``: |W|_a / (1 + tol) ≤ |W|_b ≤ |W|_a (1 + tol) (a symmetric
    relation). With P the number of such pairs,

        D = (1/P) Σ_(a,b) (s_a − s_b),

    > 0 when, at equal magnitude, the weight removed earlier has the higher score.
    Returns (D, P); D is NaN when P = 0. Exact over all pairs, without listing them: per
    removal-round group g, the weights sorted by |W| and the cumulative sums of their
    scores give, for every weight a at once (``np.searchsorted``), the count and the score
    sum of the group's weights in a's window; a collects those of the groups g > round_a.
    Inputs: 1-D arrays of equal length without NaN (drop undefined scores first).
    """
    w, r, s = (np.asarray(v).ravel() for v in (abs_weight, removal_round, score))
    w, s = w.astype(np.float64), s.astype(np.float64)
    if not w.size == r.size == s.size:
        raise ValueError(f"matched_pair_difference: need arrays of one length, got {w.size}, {r.size}, {s.size}")
    if np.isnan(w).any() or np.isnan(s).any():
        raise ValueError("matched_pair_difference: NaN in abs_weight or score; drop the weights without a defined score first")
    if not tolerance > 0:
        raise ValueError(f"matched_pair_difference: tolerance {tolerance} must be > 0 (a relative difference of |W|, e.g. 0.01)")
    low, high = w / (1 + tolerance), w * (1 + tolerance)
    later_count = np.zeros(w.size)
    later_sum = np.zeros(w.size)
    for group in np.unique(r):
        members = r == group
        order = np.argsort(w[members], kind="stable")
        sorted_w = w[members][order]
        cumulative = np.concatenate([[0.0], np.cumsum(s[members][order])])
        first = np.searchsorted(sorted_w, low, side="left")
        stop = np.searchsorted(sorted_w, high, side="right")
        earlier = r < group
        later_count += np.where(earlier, stop - first, 0)
        later_sum += np.where(earlier, cumulative[stop] - cumulative[first], 0.0)
    pairs = int(later_count.sum())
    if pairs == 0:
        return float("nan"), 0
    return float((s @ later_count - later_sum.sum()) / pairs), pairs


def cavity_statistics(table: pd.DataFrame, *, rounds: int, tolerance: float) -> pd.DataFrame:
    """Every per-network statistic of Fig. 5's claims, one row per (data, seed, level).

    ``table``: ``cavity_tables`` rows; ``rounds``: the experiments' IMP rounds. Weights
    with an undefined (NaN) score are left out. Columns, besides data, seed and level:

    - ``early``, ``late``, ``survivors``: mean score of the weights removed in rounds
      1 … ⌊rounds/2⌋, in rounds ⌊rounds/2⌋+1 … rounds, and never (Fig. 5B's groups);
    - ``last_round``: mean score of the weights removed in round ``rounds`` (Fig. 5C);
    - ``largest_group``: the largest |mean score| of a removal-round group;
    - ``rho_round_weight``: Spearman ρ(removal round, |W|), how much magnitude alone
      predicts removal (the confound the pairs remove; NaN when one round is left);
    - ``pairs``, ``matched_imp``: the number of matched pairs and their mean difference,
      earlier- minus later-removed (``matched_pair_difference`` with ``tolerance``);
    - ``matched_oneshot``: the same with the groups of oneshot's order
      (``oneshot_round``), at level 0 only (oneshot's order ranks the dense network's
      weights; NaN at later levels).

    A statistic of an empty group (e.g. ``early`` once those weights are pruned) is NaN.
    """
    half = rounds // 2
    rows = []
    for (which, seed, level), t in table.dropna(subset=["score"]).groupby(["data", "seed", "level"], sort=True):
        r, s = t.removal_round, t.score
        matched, pairs = matched_pair_difference(t.abs_weight, r, s, tolerance=tolerance)
        oneshot = matched_pair_difference(t.abs_weight, t.oneshot_round, s, tolerance=tolerance)[0] if level == 0 else float("nan")
        rows.append(
            dict(
                data=which,
                seed=seed,
                level=level,
                early=s[r <= half].mean(),
                late=s[(r > half) & (r <= rounds)].mean(),
                survivors=s[r == rounds + 1].mean(),
                last_round=s[r == rounds].mean(),
                largest_group=s.groupby(r).mean().abs().max(),
                rho_round_weight=r.corr(t.abs_weight, method="spearman") if r.nunique() > 1 else float("nan"),
                pairs=pairs,
                matched_imp=matched,
                matched_oneshot=oneshot,
            )
        )
    return pd.DataFrame(rows)
