"""imprf_utils: the library behind the imprf notebooks.

How iterative magnitude pruning grows local receptive fields in fully connected networks
(Redman et al. 2024; Pellegrini & Biroli 2022; Ingrosso & Goldt 2022). Subpackages, bottom up:
``data`` (datasets and their Gaussian clones), ``measures`` (pure measures), ``training`` (the
config, presets, network, SGD, pruning, the IMP driver, the run store, sweeps), ``report``
(claims and their records, figures, the suite's runs) and ``notebooks`` (each notebook's
analyses), on the base modules ``errors``, ``numerics`` and ``output``. docs/ARCHITECTURE.md
draws the layers; ``python -m imprf_utils sweep`` is the command line.
"""

__version__ = "0.1.0"
