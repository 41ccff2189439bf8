"""Claims records: one JSON file per notebook beside its figures, written, read and compared.

``write_claims_record`` writes ``<figures>/<dataset>/claims_NN.json`` (atomically, with the
commit and the parameters that differ from the preset's); ``read_claims_record`` reads one
back, checked; ``compare_records`` and ``compare_folders`` check a new run's records against
the committed ones within the seeds' spread (``make test``, through ``imprf_utils.report.tables``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imprf_utils.output import FIGURES, git_commit, write_atomic
from imprf_utils.report.claims import number_text
from imprf_utils.training.presets import changed_parameters


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


def judged_in(same_as: str, values: Sequence[float], *, dataset: str, figures_dir: str | Path | None) -> str | None:
    """``same_as`` when the record it names (beside the figures) judges a row with these very ``values``; else
    None, and the row is judged where it stands: a notebook run alone (e.g. notebook 03 on a photo preset, where
    notebook 02 does not run) must not point at a verdict that no record holds."""
    try:
        row = referenced_row(same_as, dataset=dataset, figures_dir=figures_dir)
    except (FileNotFoundError, ValueError):
        return None
    stored, values = row.get("values", []), [float(v) for v in values]
    same = len(stored) == len(values) and all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(stored, values))
    return same_as if same else None


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
                f"{label}: estimate {number_text(r['estimate'])} vs committed {number_text(c['estimate'])}, "
                f"{gap / se:.1f} combined standard errors apart (> {z:g})"
            )
    return problems


def judged_rows(record: dict) -> list[dict]:
    """The rows a record judges itself: not those restating another notebook's estimate (``same_as``)."""
    return [row for row in record["rows"] if row.get("same_as") is None]


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
