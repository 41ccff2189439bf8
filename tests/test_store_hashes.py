"""The run store's keys stay put: a config's run directory is named by the same hash as before.

The literal hashes below were computed before issue 28 moved the library into subpackages
(``imprf_utils`` at commit 9108124). A change of the config's fields, their defaults, their
order in ``as_dict`` or of ``store_key`` would rename every stored run, and the notebooks would
train everything again; this test fails first.
"""

import pytest

from imprf_utils.notebooks import batchnorm_regime as regime
from imprf_utils.training.experiment import Experiment, store_key
from imprf_utils.training.presets import load_preset, notebook_configs
from imprf_utils.training.store import SCHEMA_VERSION, config_hash


def configs():
    """name -> config: the default preset's data and clone, the photos preset's, and BatchNorm candidates (notebook 08)."""
    default, photos = load_preset("default"), load_preset("photos")
    data, clone = notebook_configs(default).data, notebook_configs(default).clone
    candidates = {regime_.name: configs_ for regime_, configs_ in regime.candidate_configs(default).items()}
    return {
        "default data, seed 0": data[0],
        "default data, seed 1": data[1],
        "default clone, seed 0": clone[0],
        "default clone, seed 1": clone[1],
        "photos data, seed 0": notebook_configs(photos).data[0],
        "photos clone, seed 0": notebook_configs(photos).clone[0],
        "BatchNorm base, seed 0": candidates["base"][0],
        "BatchNorm lr 0.4, seed 1": candidates["lr 0.4"][1],
        "BatchNorm photos32, seed 0": candidates["photos32"][0],
    }


RUN_DIRECTORIES = {
    "default data, seed 0": "skewed_texture/bab93c902e3d",
    "default data, seed 1": "skewed_texture/4000e7fe8802",
    "default clone, seed 0": "skewed_texture-clone/39aabfb20a39",
    "default clone, seed 1": "skewed_texture-clone/b9162aa37e85",
    "photos data, seed 0": "photos/a430691e5fa2",
    "photos clone, seed 0": "photos-clone/d8a396a833e5",
    "BatchNorm base, seed 0": "skewed_texture/e2fd7b660f89",
    "BatchNorm lr 0.4, seed 1": "skewed_texture/03cfb2835745",
    "BatchNorm photos32, seed 0": "photos/a11400bbe275",
}
"""Each config's run directory under the run store, as the code before the move named it."""

STORE_KEY_HASHES = {
    "default data, seed 0": "9ecf850e323b",
    "default clone, seed 0": "d933e820e260",
    "photos data, seed 0": "b5c9d46b7fc4",
    "BatchNorm base, seed 0": "2687543b9a7e",
}
"""``config_hash(store_key(config))``, without the schema version the run adds."""


@pytest.mark.parametrize("name", RUN_DIRECTORIES)
def test_a_config_keeps_its_run_directory(name, tmp_path):
    config = configs()[name]
    assert config_hash({**store_key(config), "schema_version": SCHEMA_VERSION}) == RUN_DIRECTORIES[name].split("/")[1]
    run = Experiment(config, tmp_path).run  # creates the directory only: no data, no training
    assert run.path.relative_to(tmp_path).as_posix() == RUN_DIRECTORIES[name]


@pytest.mark.parametrize("name", STORE_KEY_HASHES)
def test_store_key_hashes_as_before(name):
    assert config_hash(store_key(configs()[name])) == STORE_KEY_HASHES[name]
