"""imprf_utils: the library behind the imprf notebooks.

How iterative magnitude pruning grows local receptive fields in fully connected networks
(Redman et al. 2024; Pellegrini & Biroli 2022; Ingrosso & Goldt 2022). Modules, in the
order of the method: data, synthetic, clone, models, train, pruning, experiment, store,
metrics, analysis, plots, claims, presets, reproduce, sweep (`python -m imprf_utils sweep`).
"""

__version__ = "0.1.0"
