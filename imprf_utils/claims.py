"""Claims tables: one verdict rule over seeds, Holm's correction per notebook, one record per notebook.

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

``python -m imprf_utils.claims figures/<dataset>`` prints the records as markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from imprf_utils.output import FIGURES, git_commit, write_atomic

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
                "interval": f"[{_num(lower)}, {_num(upper)}]",
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


def _num(x: float) -> str:
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
                f"{SYMBOLS[d]} 0, margin {_with_unit(_num(m), u)}"
                for d, m, u in zip(judged["direction"], judged["margin"], unit)
            ],
            "n": judged["n"].astype(int),
            "estimate": [_with_unit(_num(e), u) for e, u in zip(judged["estimate"], unit)],
            "interval": [f"[{_num(lo)}, {_num(hi)}]" for lo, hi in zip(judged["lower"], judged["upper"])],
            "verdict": judged["verdict"],
        }
    )


def record_path(notebook: str, dataset: str, figures_dir: str | Path | None) -> Path:
    """``<figures_dir or figures/>/<dataset>/claims_NN.json``, NN the notebook's two-digit prefix."""
    number = Path(notebook).name[:2]
    if not (len(number) == 2 and number.isdigit()):
        raise ValueError(f"notebook must start with its two-digit number (e.g. '03' or '03_imp_vs_oneshot'), got {notebook!r}")
    return Path(FIGURES if figures_dir is None else figures_dir) / dataset / f"claims_{number}.json"


RECORD_FIELDS = ("kind", "claim", "figure", "direction", "margin", "n", "estimate", "sd", "lower", "upper", "alpha", "verdict", "unit")


def write_claims_record(
    judged: pd.DataFrame, notebook: str, *, dataset: str, preset: str, figures_dir: str | Path | None,
    parameters: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``claims_NN.json`` beside the notebook's figures (atomically); return its path.

    JSON: {"notebook", "dataset", "preset", "changed" (the parameters that differ from the
    preset's, e.g. {"steps": 200}: ``presets.changed_parameters`` of ``parameters``, the
    notebook's ``globals()``; absent without ``parameters`` or for a preset outside presets/),
    "commit" (the repository's git commit, or null), "alpha" (the family's level), "rows":
    [{kind, claim, figure, direction, margin, n, estimate, sd, lower, upper, alpha (the row's
    Holm level), verdict, unit, values, and same_as for a row judged elsewhere}]}.
    """
    from imprf_utils.training.presets import changed_parameters

    path = record_path(notebook, dataset, figures_dir)
    rows = []
    for row in judged.to_dict("records"):
        out: dict[str, Any] = {}
        for key in RECORD_FIELDS:
            value = row[key]
            out[key] = value.item() if isinstance(value, np.generic) else value
        out["values"] = [float(v) for v in row["values"]]
        if isinstance(row.get("same_as"), str):  # a DataFrame holds a missing one as NaN
            out["same_as"] = row["same_as"]
        rows.append(out)
    changed = None if parameters is None else changed_parameters(parameters, preset)
    record = {
        "notebook": Path(notebook).name,
        "dataset": dataset,
        "preset": preset,
        **({} if changed is None else {"changed": changed}),
        "commit": git_commit(),
        "alpha": float(judged["family_alpha"].iloc[0]),
        "rows": rows,
    }
    text = json.dumps(record, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    return path


def referenced_row(same_as: str, *, dataset: str, figures_dir: str | Path | None) -> dict:
    """The row that a reference ``same_as`` ("03, row 1": notebook 03's first row) names, from that
    notebook's record beside the figures: where a restated estimate is judged."""
    notebook, _, row = same_as.partition(", row ")
    path = record_path(notebook, dataset, figures_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no claims record of notebook {notebook}, which judges the row {same_as!r}; run notebook {notebook} first")
    rows = read_claims_record(path)["rows"]
    if not (row.isdigit() and 1 <= int(row) <= len(rows)):
        raise ValueError(f"{same_as!r}: expected '<notebook>, row <n>' with n in 1..{len(rows)} (the rows of {path})")
    return rows[int(row) - 1]


def read_claims_record(path: str | Path) -> dict:
    """A claims record written by ``write_claims_record``, checked for its fields."""
    path = Path(path)
    record = json.loads(path.read_text(encoding="utf-8"))
    missing = {"notebook", "preset", "commit", "alpha", "rows"} - set(record)
    if missing:
        raise ValueError(f"{path}: not a claims record (missing {sorted(missing)}); write it with write_claims_record")
    for i, row in enumerate(record["rows"]):
        absent = {"kind", "claim", "estimate", "sd", "n", "verdict"} - set(row)
        if absent:
            raise ValueError(f"{path}: row {i} misses {sorted(absent)}; write it with write_claims_record")
    return record


def compare_records(new: dict, committed: dict, *, z: float = 4.0) -> list[str]:
    """Discrepancies between a new run's claims record and the committed one ([] = consistent).

    The same rows (by kind and claim text) with the same direction and margin; each
    estimate within z·√(se_new² + se_committed²) of the committed one, se = sd/√n; rows
    with sd = 0 on both sides must agree within 1e-9 relative. Verdicts may differ (near
    a boundary they legitimately flip), so they are not compared.
    """
    def keyed(record: dict, name: str, problems: list[str]) -> dict[tuple[str, str], dict]:
        rows: dict[tuple[str, str], dict] = {}
        for row in record["rows"]:
            key = (row["kind"], row["claim"])
            if key in rows:
                problems.append(f"{name} record has the row {key[0]}: {key[1]!r} twice")
            rows[key] = row
        return rows

    problems: list[str] = []
    a, b = keyed(new, "new", problems), keyed(committed, "committed", problems)
    for kind, claim in [k for k in b if k not in a]:
        problems.append(f"{kind} {claim!r}: in the committed record, missing from the new one")
    for kind, claim in [k for k in a if k not in b]:
        problems.append(f"{kind} {claim!r}: in the new record, not in the committed one")
    for key in [k for k in a if k in b]:
        r, c = a[key], b[key]
        label = f"{key[0]} {key[1]!r}"
        for field in ("direction", "margin"):
            if field in r and field in c and r[field] != c[field]:
                problems.append(f"{label}: {field} {r[field]!r} in the new record, {c[field]!r} committed")
        se = math.hypot(r["sd"] / math.sqrt(r["n"]), c["sd"] / math.sqrt(c["n"]))
        gap = abs(r["estimate"] - c["estimate"])
        if se == 0:
            if gap > 1e-9 * max(abs(r["estimate"]), abs(c["estimate"])):
                problems.append(f"{label}: estimate {r['estimate']!r} vs committed {c['estimate']!r} (both without spread)")
        elif gap > z * se:
            problems.append(
                f"{label}: estimate {_num(r['estimate'])} vs committed {_num(c['estimate'])}, "
                f"{gap / se:.1f} combined standard errors apart (> {z:g})"
            )
    return problems


def _notebook_label(record: dict) -> str:
    return str(record["notebook"])


def judged_rows(record: dict) -> list[dict]:
    """The rows a record judges itself: not those restating another notebook's estimate (``same_as``)."""
    return [row for row in record["rows"] if row.get("same_as") is None]


def rollup(records: Sequence[dict]) -> pd.DataFrame:
    """Counts of rows per notebook and kind: one column per verdict (``VERDICTS``; holds (below
    margin) counted with holds), "below margin" (how many of the holds those are), and the total.
    A row judged in another notebook (``same_as``) is counted there only."""
    rows = pd.DataFrame(
        [{"notebook": _notebook_label(r), "kind": row["kind"], "verdict": row["verdict"]} for r in records for row in judged_rows(r)],
        columns=["notebook", "kind", "verdict"],
    )
    below = rows["verdict"] == BELOW_MARGIN
    rows["verdict"] = rows["verdict"].where(~below, "holds")
    rows["below margin"] = below.astype(int)
    table = (
        rows.groupby(["notebook", "kind"])["verdict"]
        .value_counts()
        .unstack(fill_value=0)
        .reindex(columns=list(VERDICTS), fill_value=0)
        .reset_index()
    )
    table.columns.name = None
    table.insert(3, "below margin", rows.groupby(["notebook", "kind"])["below margin"].sum().to_numpy())
    table["total"] = table[list(VERDICTS)].sum(axis=1)
    order = np.lexsort((table["kind"].map(KINDS.index).to_numpy(), table["notebook"].to_numpy()))
    return table.iloc[order].reset_index(drop=True)


def estimate_text(row: dict) -> str:
    """The row's estimate (with its unit) and interval, e.g. "0.123 px [0.1, 0.146]"."""
    return f"{_with_unit(_num(row['estimate']), row.get('unit', ''))} [{_num(row['lower'])}, {_num(row['upper'])}]"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_summary(records: Sequence[dict]) -> str:
    """One markdown table per kind: notebook, claim, figure, estimate [interval], verdict."""
    records = sorted(records, key=_notebook_label)
    parts = []
    for kind in KINDS:
        rows = [(r, row) for r in records for row in judged_rows(r) if row["kind"] == kind]
        if not rows:
            continue
        lines = [
            f"**{kind[0].upper() + kind[1:]}s**",
            "",
            "| notebook | claim | figure | estimate [interval] | verdict |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {_cell(_notebook_label(r))} | {_cell(row['claim'])} | {_cell(row.get('figure', ''))} | "
            f"{_cell(estimate_text(row))} | {row['verdict']} |"
            for r, row in rows
        ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def find_records(folder: str | Path) -> list[Path]:
    """The claims records under ``folder`` (``claims_NN.json`` at any depth), in notebook order."""
    return sorted(Path(folder).rglob("claims_[0-9][0-9].json"), key=lambda p: (p.name, str(p)))


def committed_records(
    root: str | Path, *, notebooks: Sequence[str] | None = None, preset: str | None = None
) -> list[Path]:
    """The records under ``root`` of the notebooks numbered in ``notebooks`` (e.g. ["00", "03"]) and
    of ``preset`` (e.g. "default"; the committed figures/ also hold the photos preset's); None: all."""
    return [
        p for p in find_records(root)
        if (notebooks is None or p.stem[-2:] in notebooks) and (preset is None or read_claims_record(p)["preset"] == preset)
    ]


def compare_folders(
    new_root: str | Path, committed_root: str | Path, *, z: float = 4.0, notebooks: Sequence[str] | None = None,
    preset: str | None = None,
) -> list[str]:
    """Discrepancies between every committed record under ``committed_root`` (``committed_records``
    of ``notebooks`` and ``preset``) and the new run's record at the same relative path under
    ``new_root`` (see :func:`compare_records`)."""
    new_root, committed_root = Path(new_root), Path(committed_root)
    committed = committed_records(committed_root, notebooks=notebooks, preset=preset)
    if not committed:
        return [f"no claims_NN.json under {committed_root}: nothing to compare with (run make notebooks)"]
    problems = []
    for path in committed:
        relative = path.relative_to(committed_root)
        if not (new_root / relative).is_file():
            problems.append(f"{relative}: committed, but the new run wrote no such record under {new_root}")
            continue
        found = compare_records(read_claims_record(new_root / relative), read_claims_record(path), z=z)
        problems += [f"{relative}: {problem}" for problem in found]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the claims records under folders as markdown tables (for the README).")
    parser.add_argument("folders", nargs="+", type=Path, help="e.g. figures/skewed_texture")
    parser.add_argument(
        "--compare-with", type=Path, metavar="COMMITTED",
        help="instead, check the records under the one folder given against those under COMMITTED (e.g. figures): "
        "every committed record must have a counterpart whose estimates lie within the seeds' spread",
    )
    parser.add_argument("--notebooks", nargs="+", metavar="NN", help="with --compare-with: only these notebooks' records")
    parser.add_argument("--preset", help="with --compare-with: only the committed records of this preset (e.g. default)")
    args = parser.parse_args(argv)
    if args.compare_with is not None:
        chosen = dict(notebooks=args.notebooks, preset=args.preset)
        problems = [p for folder in args.folders for p in compare_folders(folder, args.compare_with, **chosen)]
        for problem in problems:
            print(problem, file=sys.stderr)
        count = len(committed_records(args.compare_with, **chosen))
        print(f"claims records: {count} compared, {len(problems)} discrepancies" if count else "", file=sys.stderr)
        return 1 if problems else 0
    paths = [p for folder in args.folders for p in find_records(folder)]
    if not paths:
        print(
            f"no claims_NN.json under {', '.join(map(str, args.folders))}: run the notebooks first "
            "(make notebooks writes them under figures/<dataset>/)",
            file=sys.stderr,
        )
        return 2
    print(markdown_summary([read_claims_record(p) for p in paths]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
