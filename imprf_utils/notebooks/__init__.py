"""The notebooks' own analyses: the tables, figures' numbers and claims' values each notebook needs.

- `imprf_utils.notebooks.runs` — the networks a notebook reads, as tables by network; ``per_seed``;
- `imprf_utils.notebooks.levels` — per-level summaries with their controls (notebooks 00, 02, 03, 06);
- `imprf_utils.notebooks.features` — ICA vs PCA and the one-hidden-layer check (notebooks 01, 02);
- `imprf_utils.notebooks.kurtosis` — Fig. 4B's kurtosis with its control, and the lagged test (04);
- `imprf_utils.notebooks.cavity` — Fig. 5's cavity scores by removal round, matched pairs (05);
- `imprf_utils.notebooks.robustness` — notebook 07's matrix: its cells, measures and claims;
- `imprf_utils.notebooks.batchnorm_regime` — notebook 08's BatchNorm candidates and criterion.

They sit on top: they read the runs (training), compute the measures and hand figures and
claims their numbers (report). The notebooks import from here what they call (notebooks 07
and 08 import ``robustness`` and ``batchnorm_regime`` as modules); the library imports each
name from its module.
"""

from imprf_utils.notebooks.cavity import cavity_statistics, cavity_tables, removal_group_means
from imprf_utils.notebooks.features import ica_vs_pca, train_one_hidden_layer
from imprf_utils.notebooks.kurtosis import (
    LAGGED_MIN_ROUNDS, gaussian_kurtosis_bound, kurtosis_summary, lagged_correlations, lagged_localization,
)
from imprf_utils.notebooks.levels import (
    clone_fidelity, connection_summary, level_summary, probe_accuracies, summarize, width_ratios,
)
from imprf_utils.notebooks.runs import first_layer, learning_curves, notebook_runs, per_experiment, per_seed

__all__ = [
    "LAGGED_MIN_ROUNDS", "cavity_statistics", "cavity_tables", "clone_fidelity", "connection_summary", "first_layer",
    "gaussian_kurtosis_bound", "ica_vs_pca", "kurtosis_summary", "lagged_correlations", "lagged_localization",
    "learning_curves", "level_summary", "notebook_runs", "per_experiment", "per_seed", "probe_accuracies",
    "removal_group_means", "summarize", "train_one_hidden_layer", "width_ratios",
]
