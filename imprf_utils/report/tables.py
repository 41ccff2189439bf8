"""Claims records as tables: counts per verdict, markdown tables, and the command line that prints them.

    python -m imprf_utils.report.tables figures/skewed_texture figures/nlgp     # the README's tables
    python -m imprf_utils.report.tables build/test/figures --compare-with figures --preset default

``rollup`` counts a notebook's rows per kind and verdict (the HTML index shows it, ``index``);
``markdown_summary`` is one markdown table per kind; with ``--compare-with`` the command checks
every committed record against the new run's (``records.compare_folders``), as ``make test`` does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from imprf_utils.report.claims import BELOW_MARGIN, KINDS, VERDICTS, estimate_text
from imprf_utils.report.records import committed_records, compare_folders, find_records, judged_rows, read_claims_record


def _notebook_label(record: dict) -> str:
    return str(record["notebook"])


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
