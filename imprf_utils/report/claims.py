"""Claims: one verdict rule over seeds, Holm's correction per notebook, the claims table.

A claim is judged on per-network effects (one value per seed: the network is the unit),
with a claimed sign (``direction``) and a pre-registered smallest effect of interest
(``margin``). Every row has a kind: a **claim** (what the paper asserts), a **positive
control** (true by construction of the data or the method; it checks the pipeline), or a
**sanity check** (a premise or confound the claims rest on). A row that restates an estimate
another notebook judges (``same_as``) is shown for reference and judged there only.

Each notebook ends with::

    judged = judge(claims)
    write_claims_record(judged, "03", dataset=..., preset=preset, figures_dir=..., parameters=globals())
    claims_table(judged)

This module is the statistics (``bounds``: the interval every figure draws too); the records
are written and read by ``imprf_utils.report.records``, rolled up and printed as markdown by
``imprf_utils.report.tables`` (``python -m imprf_utils.report.tables figures/<dataset>``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


KINDS = ("claim", "positive control", "sanity check")
DIRECTIONS = ("greater", "less")
VERDICTS = ("holds", "inconclusive", "fails")
"""The roll-up's three verdicts; a row's verdict may also be BELOW_MARGIN (counted with holds, and apart)."""
BELOW_MARGIN = "holds (below margin)"
"""The effect is of the claimed sign but reliably smaller than the margin: real, and smaller than anything of interest."""
SYMBOLS = {"greater": ">", "less": "<"}


def _effects(values: Sequence[float]) -> np.ndarray:
    """The values as a float array, checked: at least two, all finite."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2:
        raise ValueError(
            f"a verdict needs at least 2 values (one effect per network, i.e. per seed); got {x.size}: "
            "run with two seeds or more, e.g. papermill -y 'seeds: [0, 1]'"
        )
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise ValueError(
            f"values at positions {bad.tolist()} are not finite ({x[bad].tolist()}): each value must be one "
            "network's measured effect; check the measure for those seeds"
        )
    return x


def _check_claimed(direction: str, margin: float) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'greater' or 'less' (the claimed sign of the effect), got {direction!r}")
    if not (isinstance(margin, (int, float, np.number)) and math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a finite number > 0 (the smallest effect of interest), got {margin!r}")


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5) (e.g. 0.05), got {alpha!r}")


def bounds(values: Sequence[float], *, alpha: float = 0.05) -> tuple[float, float]:
    """One-sided 1 − α Student-t bounds on the mean of ``values``: (lower, upper).

    lower = x̄ − t_{1−α, n−1} s/√n,  upper = x̄ + t_{1−α, n−1} s/√n,
    s the sample standard deviation (ddof 1). Each bound alone has coverage 1 − α; with
    s = 0 both equal the mean.
    """
    _check_alpha(alpha)
    x = _effects(values)
    half = stats.t.ppf(1 - alpha, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)


def p_value(values: Sequence[float], *, direction: str) -> float:
    """One-sided p-value of the t-test of mean 0 against the claimed side.

    greater: p = P(T_{n−1} ≥ x̄ √n / s); less: the same on −x. With s = 0, p = 0 when the
    mean lies strictly on the claimed side and 1 otherwise (the limit that keeps
    ``p < α`` equivalent to ``verdict(...) == "holds"``).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'greater' or 'less' (the claimed sign of the effect), got {direction!r}")
    x = _effects(values) * (1 if direction == "greater" else -1)
    s = x.std(ddof=1)
    if s == 0:
        return 0.0 if x.mean() > 0 else 1.0
    return float(stats.t.sf(x.mean() * math.sqrt(x.size) / s, x.size - 1))


def verdict(values: Sequence[float], *, direction: str, margin: float, alpha: float = 0.05) -> str:
    """The verdict on a claimed effect from one value per network: holds, holds (below margin),
    fails or inconclusive.

    With x the values (negated when ``direction == "less"``), n their number, x̄ their
    mean, s their standard deviation (ddof 1) and t = t_{1−α, n−1} the Student-t quantile:

    - holds when the bound on the claimed side lies beyond 0 (x̄ − t s/√n > 0) and the
      other bound does not lie short of the margin;
    - holds (below margin), ``BELOW_MARGIN``, when the interval lies wholly between 0 and
      the margin: 0 < x̄ − t s/√n and x̄ + t s/√n < margin (the effect is real, of the claimed
      sign, and reliably smaller than anything of interest);
    - fails when it does not hold and the other bound lies short of the margin:
      x̄ + t s/√n < margin (the effect is reliably smaller than anything of interest,
      or of the wrong sign);
    - inconclusive otherwise.

    Each label is an error-controlled statement: an effect of 0 (or less) is called holds or
    holds (below margin) with probability at most α, an effect of at least the margin is called
    fails or holds (below margin) with probability at most α.
    """
    _check_claimed(direction, margin)
    _check_alpha(alpha)
    x = _effects(values) * (1 if direction == "greater" else -1)
    lower, upper = bounds(x, alpha=alpha)
    if lower > 0:
        return BELOW_MARGIN if upper < margin else "holds"
    if upper < margin:
        return "fails"
    return "inconclusive"


@dataclass(frozen=True)
class Claim:
    """One row of a notebook's claims table; ``values`` hold one effect per network (seed)."""

    kind: str  # one of KINDS
    claim: str  # the sentence, e.g. "IMP is more local than random pruning"
    figure: str  # the paper figure it serves, e.g. "Fig. 4A", or "—"
    values: Sequence[float]  # per-network effects, one per seed
    direction: str  # "greater" | "less": the claimed sign of the effect
    margin: float  # smallest effect of interest, > 0, pre-registered in the notebook
    unit: str = ""  # shown next to the estimate, e.g. "px"
    same_as: str | None = None  # where this estimate is judged, e.g. "03, row 1": shown, not judged again

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.claim!r}: kind must be one of {KINDS}, got {self.kind!r}")
        try:
            _check_claimed(self.direction, self.margin)
            values = tuple(float(v) for v in _effects(self.values))
        except ValueError as error:
            raise ValueError(f"claim {self.claim!r}: {error}") from None
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "margin", float(self.margin))


def holm_alphas(p_values: Sequence[float], alpha: float = 0.05) -> list[float]:
    """The level each test is judged at under Holm's step-down procedure.

    Sort p ascending; the test of rank i (1-based) of m is judged at α/(m − i + 1) up to
    the first rank j* with p_(j*) ≥ α/(m − j* + 1); that test and every later one are
    judged at α/(m − j* + 1). So ``p < level`` is exactly Holm's rejection.
    """
    m = len(p_values)
    levels = [0.0] * m
    stopped = None
    for i, row in enumerate(sorted(range(m), key=lambda r: p_values[r]), start=1):
        if stopped is None and not p_values[row] < alpha / (m - i + 1):
            stopped = alpha / (m - i + 1)
        levels[row] = stopped if stopped is not None else alpha / (m - i + 1)
    return levels


def judge(claims: Sequence[Claim], *, alpha: float = 0.05) -> pd.DataFrame:
    """Verdicts for one notebook's claims, Holm-corrected across all its rows.

    Each row's one-sided p-value (``p_value``) sets its Holm level α_row
    (``holm_alphas``); its verdict is ``verdict(values, alpha=α_row)`` and its interval
    the pair of one-sided 1 − α_row bounds. A row with ``same_as`` (an estimate another
    notebook judges) stays outside the family: its interval is at α and its verdict reads
    "= <same_as>". Rows are ordered by kind (claim, positive control, sanity check), then as given.

    Columns: kind, claim, figure, direction, margin, n, estimate (the mean), sd,
    interval ("[lower, upper]"), verdict; then, for the record, lower, upper, alpha
    (the row's Holm level), p, family_alpha, unit and values.
    """
    if not claims:
        raise ValueError("judge needs at least one Claim")
    _check_alpha(alpha)
    ps = [p_value(c.values, direction=c.direction) for c in claims]
    judged = [i for i, c in enumerate(claims) if c.same_as is None]
    levels = [alpha] * len(claims)
    for i, level in zip(judged, holm_alphas([ps[i] for i in judged], alpha)):
        levels[i] = level
    rows = []
    for c, p, level in zip(claims, ps, levels):
        x = np.asarray(c.values)
        lower, upper = bounds(x, alpha=level)
        row_verdict = f"= {c.same_as}" if c.same_as is not None else verdict(x, direction=c.direction, margin=c.margin, alpha=level)
        rows.append(
            {
                "kind": c.kind,
                "claim": c.claim,
                "figure": c.figure,
                "direction": c.direction,
                "margin": c.margin,
                "n": int(x.size),
                "estimate": float(x.mean()),
                "sd": float(x.std(ddof=1)),
                "interval": f"[{number_text(lower)}, {number_text(upper)}]",
                "verdict": row_verdict,
                "lower": lower,
                "upper": upper,
                "alpha": level,
                "p": p,
                "family_alpha": alpha,
                "unit": c.unit,
                "same_as": c.same_as,
                "values": c.values,
            }
        )
    table = pd.DataFrame(rows)
    order = table["kind"].map(KINDS.index)
    return table.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)


def number_text(x: float) -> str:
    """Three significant digits, no exponent noise for the usual range."""
    return f"{x:.3g}"


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit else text


def claims_table(judged: pd.DataFrame) -> pd.DataFrame:
    """The table a notebook ends with: kind, claim, figure, claimed, n, estimate, interval, verdict.

    "claimed" reads e.g. "> 0, margin 0.01"; numbers have three significant digits, so
    the text is stable across machines up to that precision.
    """
    unit = judged["unit"] if "unit" in judged else pd.Series("", index=judged.index)
    return pd.DataFrame(
        {
            "kind": judged["kind"],
            "claim": judged["claim"],
            "figure": judged["figure"],
            "claimed": [
                f"{SYMBOLS[d]} 0, margin {_with_unit(number_text(m), u)}"
                for d, m, u in zip(judged["direction"], judged["margin"], unit)
            ],
            "n": judged["n"].astype(int),
            "estimate": [_with_unit(number_text(e), u) for e, u in zip(judged["estimate"], unit)],
            "interval": [f"[{number_text(lo)}, {number_text(hi)}]" for lo, hi in zip(judged["lower"], judged["upper"])],
            "verdict": judged["verdict"],
        }
    )


def estimate_text(row: dict) -> str:
    """The row's estimate (with its unit) and interval, e.g. "0.123 px [0.1, 0.146]"."""
    return f"{_with_unit(number_text(row['estimate']), row.get('unit', ''))} [{number_text(row['lower'])}, {number_text(row['upper'])}]"
