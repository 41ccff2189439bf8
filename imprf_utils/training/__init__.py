"""Training: the config, the masked network, SGD, pruning, the IMP driver, the run store and sweeps.

- `imprf_utils.training.config` — ``ExperimentConfig``: every field once (type, default, section);
- `imprf_utils.training.presets` — presets/*.yaml and the configs of a notebook's parameters;
- `imprf_utils.training.models` — the masked fully connected network, K replicas stacked;
- `imprf_utils.training.train` — the one SGD loop, data resident on the device;
- `imprf_utils.training.pruning` — magnitude and random masks, removal rounds;
- `imprf_utils.training.runner` — the IMP driver: dense, IMP rounds, oneshot and random levels;
- `imprf_utils.training.experiment` — ``Level``, a run's data, and ``Experiment``, which reads it back;
- `imprf_utils.training.store` — the run store: a directory per config, a level per stage, atomic;
- `imprf_utils.training.sweep` — many configs through any executor, coordinated by the run store.

Training imports the data and the base modules (errors, output), never a measure or the report.
The notebooks import its entry points from here; the library imports each from its module.
"""

from imprf_utils.training.config import ExperimentConfig, config_defaults
from imprf_utils.training.experiment import DENSE, METHODS, Experiment, Level, load_data, store_key
from imprf_utils.training.presets import experiment_config, load_preset, notebook_configs, preset_names
from imprf_utils.training.runner import resolve_device, run_experiment, run_experiments
from imprf_utils.training.sweep import preset_configs, run_sweep

__all__ = [
    "DENSE", "METHODS", "Experiment", "ExperimentConfig", "Level", "config_defaults", "experiment_config", "load_data",
    "load_preset", "notebook_configs", "preset_configs", "preset_names", "resolve_device", "run_experiment",
    "run_experiments", "run_sweep", "store_key",
]
