"""The measures of the suite: pure functions, tensors in, tensors out, by topic.

Every figure-level claim of the papers rests on one of these:

- `imprf_utils.measures.preactivations` — kurtosis and non-Gaussianity of first-layer
  pre-activations (Redman et al. Fig. 4B) and the cavity score of each weight (Fig. 5);
- `imprf_utils.measures.shape` — how local the masks are: RF width, compactness, the average
  receptive field, IPR (Figs. 1, 3C, 4A; Ingrosso & Goldt), each against the count-matched
  control "same weights at random positions", `shuffle_positions`;
- `imprf_utils.measures.connections` — Pellegrini & Biroli's diagnostics: locality maps and
  connections per unit against the binomial null.

A measure imports nothing of the suite but another measure: no data, no training, no output.
The notebooks import the measures from here (``from imprf_utils.measures import ipr``); the
library imports each from its module.
Conventions (docs/CONTRACTS.md): a first-layer input index is c*H*W + y*W + x for an image of
shape (C, H, W); on `periodic` images spatial distances are minimum-image distances on the
H×W torus. Moments are computed in float64.
"""

from imprf_utils.measures.connections import binomial_null, connections_per_unit, locality_maps, near_pair_fraction
from imprf_utils.measures.preactivations import cavity_scores, class_kurtosis, kurtosis, mean_class_kurtosis, non_gaussianity
from imprf_utils.measures.shape import (
    average_receptive_field, compactness, compactness_ratio, ipr, near_centre_share, rf_width, rf_width_ratio,
    shuffle_positions,
)

__all__ = [
    "average_receptive_field", "binomial_null", "cavity_scores", "class_kurtosis", "compactness", "compactness_ratio",
    "connections_per_unit", "ipr", "kurtosis", "locality_maps", "mean_class_kurtosis", "near_centre_share",
    "near_pair_fraction", "non_gaussianity", "rf_width", "rf_width_ratio", "shuffle_positions",
]
