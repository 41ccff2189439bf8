"""The presets (presets/*.yaml, imprf_utils.training.presets): each builds valid configs; a bad name,
file or parameter stops before any work and says what to do."""

import pytest
import yaml

from imprf_utils.errors import ConfigError
from imprf_utils.notebooks import robustness
from imprf_utils.training.presets import (
    PRESETS_DIR, experiment_config, load_preset, notebook_configs, passed_parameters, preset_names,
)


def test_the_suite_has_its_presets():
    assert {"default", "smoke"} <= set(preset_names())
    assert preset_names() == sorted(path.stem for path in PRESETS_DIR.glob("*.yaml"))


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_builds_valid_configs_for_the_data_and_the_clone(name):
    """Every seed's config of the data and of its clone (ExperimentConfig refuses a bad one), as the notebooks build them."""
    parameters = load_preset(name)
    experiment_config(parameters)
    configs = notebook_configs(parameters)
    assert [c.seed for c in configs.data] == [c.seed for c in configs.clone] == list(parameters["seeds"])
    assert all(c.clone for c in configs.clone) and not any(c.clone for c in configs.data)
    assert {c.compare_levels for c in configs.clone} == {tuple(parameters.get("clone_compare_levels", parameters["compare_levels"]))}


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid presets: .*default"):
        load_preset("fast")


def test_a_missing_preset_file_is_named():
    with pytest.raises(ConfigError, match="does not exist"):
        load_preset("no/such/preset.yaml")


def test_a_copied_preset_with_an_unknown_name_is_refused(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({**load_preset("smoke"), "rounds_": 3}))
    with pytest.raises(ConfigError, match=r"preset .*mine.yaml: unknown parameter 'rounds_': did you mean 'rounds'\?"):
        load_preset(mine)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seeds": 3}, "seeds: got 3, expected a non-empty list"),
        ({"seeds": "[0]"}, "give lists with -y"),
        ({"seeds": []}, "non-empty"),
        ({"seeds": [0, 0]}, "distinct"),
        ({"rounds": 3, "compare_levels": [2]}, "include rounds=3"),
    ],
)
def test_notebook_parameters_are_checked_before_any_work(changes, message):
    parameters = {**load_preset("smoke"), **changes}
    with pytest.raises(ConfigError, match=message):
        notebook_configs(parameters)


def kernel_namespace(passed: dict, **notebook_variables) -> dict:
    """A notebook kernel's globals() after papermill passed ``passed``: its parameters cell (smoke
    preset values here), the injected cell in IPython's input history ``In``, its own variables."""
    injected = "# Parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in passed.items())
    return {**load_preset("smoke"), **passed, "In": ["", "preset = 'default'", injected, "import torch"], **notebook_variables}


@pytest.mark.parametrize(
    "build", [experiment_config, notebook_configs, robustness.pilot_configs], ids=lambda f: f.__name__
)
def test_a_misspelled_parameter_stops_before_any_work_naming_the_closest_one(build):
    with pytest.raises(ConfigError, match=r"^unknown parameter 'step': did you mean 'steps'\?$"):
        build(kernel_namespace({"step": 200}))
    with pytest.raises(ConfigError, match=r"unknown parameter 'seed': did you mean 'seeds'\?; unknown parameter 'zzz': no notebook"):
        build(kernel_namespace({"seed": 3, "zzz": 1}))


def test_names_the_suite_knows_pass_silently_and_the_notebooks_own_variables_are_not_parameters():
    passed = {"steps": 30, "examples": 2, "robustness_long_steps": 2}  # 02-06 use no 'examples', 00 no 'steps'
    assert notebook_configs(kernel_namespace(passed, plt=object(), figures="x")).data[0].steps == 30
    assert passed_parameters(kernel_namespace(passed, plt=object())) == list(passed)
    assert passed_parameters(load_preset("smoke")) == []  # a preset is not a notebook's namespace
