"""Claims tables: each notebook ends with claim, measured value (min-max over seeds), holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Claim:
    claim: str
    values: Sequence[float]  # one per seed (or a single measurement)
    holds: bool
    criterion: str  # what "holds" means, in words with the threshold

    def measured(self, digits: int = 3) -> str:
        v = np.asarray(self.values, dtype=float)
        mean = f"{v.mean():.{digits}f}"
        if len(v) == 1:
            return mean
        return f"{mean} ({v.min():.{digits}f} to {v.max():.{digits}f})"


def claims_table(claims: Sequence[Claim]) -> pd.DataFrame:
    """The table a notebook ends with; 'measured' is the mean and, in brackets, min to max over seeds."""
    return pd.DataFrame(
        {
            "claim": [c.claim for c in claims],
            "measured": [c.measured() for c in claims],
            "criterion": [c.criterion for c in claims],
            "holds": ["yes" if c.holds else "no" for c in claims],
        }
    )
