"""The report: verdicts and their records, figures and their files, the suite's runs and their index.

- `imprf_utils.report.claims` — the verdict rule over seeds, Holm's correction, the claims table;
- `imprf_utils.report.records` — claims records (JSON beside the figures): written, read, compared;
- `imprf_utils.report.tables` — records rolled up and printed as markdown (a command line);
- `imprf_utils.report.figure_files` — a figure's caption and files (PNG, PDF, JSON sidecar), and ``FigureContext``;
- `imprf_utils.report.marks` — per-seed dots, means and the claims' interval, the figures' colours;
- `imprf_utils.report.pictures` — masks, receptive fields, images, components, histograms;
- `imprf_utils.report.figures` — the papers' summary figures (Figs. 3C, 4, 5), the dense learning curves, the ablations;
- `imprf_utils.report.matrix` — the robustness matrix of notebooks 07 and 08;
- `imprf_utils.report.index` — the HTML index of a run of the suite;
- `imprf_utils.report.reproduce` — runs the notebooks with a preset (a command line);
- `imprf_utils.report.run_times` — the notebooks' measured run times (``run_times.json``), their table.

The report reads what training stored, through the notebooks' tables; nothing below it imports
it. The notebooks import from here what they call; the library imports each name from its module.
"""

from imprf_utils.report.claims import Claim, bounds, claims_table, judge, verdict
from imprf_utils.report.figure_files import FigureContext, caption_line, quoted, save_figure
from imprf_utils.report.figures import (
    KURTOSIS_PANELS, LOCALIZATION_PANELS, accuracy_figure, cavity_by_round_figure, cavity_round0_figure,
    data_vs_clone_figure, kurtosis_figure, lag_figure, learning_curves_figure, localization_figure,
    matched_pairs_figure, superclasses_figure, train_fraction_figure,
)
from imprf_utils.report.matrix import cell_name, robustness_figure, robustness_summary
from imprf_utils.report.marks import STATS_KEY, band
from imprf_utils.report.pictures import (
    MASK_KEY, by_ipr, component_grid_figure, connections_figure, image_grid_figure, ipr_figure, locality_map_figure,
    mask_grid_figure, masks_and_fields_figure, pixel_kurtosis_figure,
)
from imprf_utils.report.records import judged_in, read_claims_record, write_claims_record

__all__ = [
    "KURTOSIS_PANELS", "LOCALIZATION_PANELS", "MASK_KEY", "STATS_KEY", "Claim", "FigureContext", "accuracy_figure",
    "band", "bounds", "by_ipr", "caption_line", "cavity_by_round_figure", "cavity_round0_figure", "cell_name",
    "claims_table", "component_grid_figure", "connections_figure", "data_vs_clone_figure", "image_grid_figure",
    "ipr_figure", "judge", "judged_in", "kurtosis_figure", "lag_figure", "learning_curves_figure",
    "locality_map_figure", "localization_figure", "mask_grid_figure", "masks_and_fields_figure",
    "matched_pairs_figure", "pixel_kurtosis_figure", "quoted", "read_claims_record", "robustness_figure",
    "robustness_summary", "save_figure", "superclasses_figure", "train_fraction_figure", "verdict",
    "write_claims_record",
]
