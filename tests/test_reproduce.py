"""The HTML report of ``make reproduce``, from a fabricated notebook, claims record and figures (no run)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
import yaml

from imprf_utils.report import reproduce
from imprf_utils.report.claims import Claim, judge
from imprf_utils.report.index import figure_caption, paper_figure
from imprf_utils.report.records import write_claims_record
from imprf_utils.report.reproduce import run_notebook, write_index
from imprf_utils.training.presets import load_preset, preset_names
from conftest import run_with_a_kernel

ROOT = Path(__file__).resolve().parents[1]

PRESET = {"preset": "smoke", "dataset": "skewed_texture", "seeds": [0, 1], "hidden": [32, 32], "steps": 60, "rounds": 2}


def fake_figure(folder, name: str, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    plt.imsave(folder / f"{name}.png", np.zeros((4, 4)))
    (folder / f"{name}.json").write_text(json.dumps(meta))


@pytest.fixture
def report(tmp_path):
    """An executed notebook 03 that saves fig4a, its claims record, and a figure no notebook names."""
    out = tmp_path / "out"
    out.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# IMP vs random"),
        nbformat.v4.new_code_cell('save_figure(fig, data_name, "fig4a_rf_width_vs_sparsity", params, figures_dir)'),
    ]
    path = out / "03_imp_vs_oneshot_vs_random.ipynb"
    nbformat.write(notebook, path)
    figures = tmp_path / "figures"
    params = {"dataset": "skewed_texture", "seeds": [0, 1], "preset": "smoke"}
    fake_figure(figures / "skewed_texture", "fig4a_rf_width_vs_sparsity", {"parameters": params, "git_commit": "abcdef0123"})
    fake_figure(figures / "skewed_texture", "stray_plot", {"parameters": params, "git_commit": None})
    rng = np.random.default_rng(0)
    judged = judge([
        Claim("claim", "IMP is more local than random pruning", "Fig. 4A", rng.normal(0.2, 0.01, 5), "greater", 0.05),
        Claim("claim", "oneshot is as local as IMP", "Fig. 4A", rng.normal(0.0, 1e-3, 5), "greater", 0.05),
        Claim("positive control", "ICA <beats> PCA", "Fig. 2", rng.normal(1.0, 0.1, 5), "greater", 0.1),
    ])
    write_claims_record(judged, path.stem, dataset="skewed_texture", preset="smoke", figures_dir=figures)
    return out, path, figures


def section(index: str, heading: str) -> str:
    """The HTML from the <h2> that contains ``heading`` to the next <h2>."""
    match = re.search(rf"<h2[^>]*>(?:(?!<h2).)*{re.escape(heading)}.*?(?=<h2|$)", index, re.S)
    assert match, f"no section {heading!r}"
    return match.group(0)


def test_report_shows_preset_claims_and_figures(report):
    out, path, figures = report
    index = write_index(out, "smoke", [(path, 42.4)], figures, PRESET).read_text()
    assert (out / "03_imp_vs_oneshot_vs_random.html").is_file()
    assert "smoke preset: checks the plumbing, not the science" in index
    assert "seeds 2 (0, 1)" in index and "hidden 32×32" in index
    notebook = section(index, "03_imp_vs_oneshot_vs_random</a> —")
    assert "42 s" in notebook and 'href="03_imp_vs_oneshot_vs_random.html"' in notebook
    counts = re.findall(r"<tr><td>(claim|positive control)</td>((?:<td>\d+</td>){5})</tr>", notebook)
    assert counts == [("claim", "<td>1</td><td>0</td><td>0</td><td>1</td><td>2</td>"),
                      ("positive control", "<td>1</td><td>0</td><td>0</td><td>0</td><td>1</td>")]
    assert "IMP is more local than random pruning" in notebook and "ICA &lt;beats&gt; PCA" in notebook
    assert 'class="fails">fails' in notebook
    assert 'src="../figures/skewed_texture/fig4a_rf_width_vs_sparsity.png"' in notebook
    assert "Fig. 4A · preset smoke · skewed_texture · 2 seeds · commit abcdef0" in notebook
    assert "stray_plot.png" not in notebook
    assert 'src="../figures/skewed_texture/stray_plot.png"' in section(index, "Figures</h2>")


def test_report_without_smoke_banner_or_records(report, tmp_path):
    out, path, figures = report
    for record in figures.rglob("claims_*.json"):
        record.unlink()
    index = write_index(out, "default", [(path, 1.0)], figures).read_text()
    assert "banner" not in index.split("</style>")[1]
    assert "No claims record (claims_03.json)" in index
    empty = write_index(out, "default", [(path, 1.0)], tmp_path / "nothing").read_text()
    assert "Figures</h2>" not in empty


def test_figure_json_notebook_field_attributes_it(report):
    out, path, figures = report
    fake_figure(figures / "nlgp", "ig_ipr", {"notebook": "03_imp_vs_oneshot_vs_random", "caption": "I&G's IPR"})
    index = write_index(out, "smoke", [(path, 1.0)], figures).read_text()
    assert "I&amp;G&#x27;s IPR" in section(index, "03_imp_vs_oneshot_vs_random</a> —")


def test_captions_name_the_paper_figure():
    assert paper_figure("fig4a_rf_width_vs_sparsity") == "Fig. 4A"
    assert paper_figure("fig5_cavity_magnitude_control") == "Fig. 5"
    assert paper_figure("figure_of_merit") is None
    assert figure_caption("ig_ipr", {"parameters": {"seeds": [0]}}) == "ig_ipr · 1 seed"


@pytest.mark.notebooks
def test_each_training_in_a_notebook_prints_on_the_terminal_and_draws_no_bar_in_it(tmp_path, capsys, monkeypatch):
    """``make reproduce`` (run_notebook with progress) prints what the kernel's `train` reports, as it happens;
    the notebook keeps no progress bar (a saved widget shows a frozen 0%), though a kernel would draw one."""
    monkeypatch.delenv("IMPRF_PROGRESS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_code_cell("steps = 30", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import torch\n"
            "from imprf_utils.data import load_dataset\n"
            "from imprf_utils.training.models import MaskedFCN\n"
            "from imprf_utils.training.device_data import DeviceData\n"
            "from imprf_utils.training.train import train\n"
            "ds = load_dataset('skewed_texture', split='train', n=200, size=8)\n"
            "data = DeviceData.from_dataset(ds, 'cpu')\n"
            "model = MaskedFCN((64, 8, ds.num_classes), seeds=[0, 1])\n"
            "train(model, data, data, steps=steps, batch_size=16, lr=0.1, batch_seeds=[0, 1], eval_every=steps,\n"
            "      description='two tiny networks')"
        ),
    ]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(notebook, path)
    output, _ = run_notebook(path, tmp_path, {"steps": 30, "unused": 1}, "smoke", progress=True)
    outputs = nbformat.read(output, as_version=4).cells[-1].outputs
    assert not [o for o in outputs if o.output_type in ("display_data", "stream")], outputs
    printed = capsys.readouterr().out
    assert re.search(r"^    two tiny networks: 30 steps, 2 networks, \d+ s$", printed, re.M), printed
    run_notebook(path, tmp_path, {"steps": 20}, "smoke")  # without progress: nothing printed
    assert "two tiny networks" not in capsys.readouterr().out


def tiny_notebook(path: Path, code: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell("x = 1  # a parameter", metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell(code)]
    nbformat.write(notebook, path)
    return path


@pytest.mark.notebooks
def test_the_kernel_listens_on_socket_files_that_go_with_it(tmp_path, capfd):
    """Two notebooks started at once cannot be handed the same TCP port: the kernel has no port."""
    code = "from ipykernel.kernelapp import IPKernelApp\napp = IPKernelApp.instance()\nprint(app.transport, app.ip)"
    output, _ = run_notebook(tiny_notebook(tmp_path / "tiny.ipynb", code), tmp_path, {}, "smoke")
    transport, socket = nbformat.read(output, as_version=4).cells[-1].outputs[0]["text"].split()
    assert transport == "ipc"
    assert Path(socket).parent.name.startswith("imprf-kernel-") and not Path(socket).parent.exists()
    assert "without encryption" not in capfd.readouterr().err


@pytest.mark.notebooks
def test_over_tcp_the_kernel_runs_without_its_warning(tmp_path, capfd, monkeypatch):
    """Where there are no socket files (Windows), the kernel's "running over TCP without encryption"
    warning would print for every notebook."""
    monkeypatch.setattr(reproduce, "SOCKET_FILES", False)
    path = tiny_notebook(tmp_path / "tiny.ipynb", "print(x)")
    run_notebook(path, tmp_path, {"x": 2}, "smoke")
    assert "without encryption" not in capfd.readouterr().err
    monkeypatch.setattr(reproduce, "KERNEL_ARGUMENTS", [])  # the control: the kernel as it starts by default
    run_notebook(path, tmp_path, {"x": 2}, "smoke")
    assert "without encryption" in capfd.readouterr().err


def test_a_command_whose_kernel_lost_its_port_starts_again_and_other_failures_do_not(tmp_path):
    """tests' run_with_a_kernel: a kernel that died at start-up is started again, up to three times; any
    other failure, and a kernel that keeps dying, come back as they failed."""
    starts = tmp_path / "starts"

    def command(printed: str) -> list[str]:
        code = f"import sys; open({str(starts)!r}, 'a').write('.'); print({printed!r}, file=sys.stderr); sys.exit(1)"
        return [sys.executable, "-c", code]

    for printed, expected in [("zmq.error.ZMQError: Address already in use", 3), ("AssertionError", 1)]:
        starts.write_text("")
        result = run_with_a_kernel(command(printed), timeout=60)
        assert result.returncode == 1 and printed in result.stderr
        assert len(starts.read_text()) == expected, printed


def test_a_config_error_is_one_line_not_a_traceback():
    command = [sys.executable, "-m", "imprf_utils.report.reproduce", "--preset", "fast", "notebooks/00_data_and_gaussian_clone.ipynb"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"python -m imprf_utils.report.reproduce: error: unknown preset 'fast'; valid presets: {', '.join(preset_names())} (or a YAML file's path)"
    ]


@pytest.mark.notebooks
def test_a_config_error_in_a_notebook_is_one_line_naming_the_notebook(tmp_path, capsys):
    """The kernel's ConfigError (here: a copied preset's repeated seed, refused by notebook 04's first call)
    is the command's one-line error, with the notebook as run, not papermill's traceback of the cell."""
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({**load_preset("smoke"), "seeds": [0, 0], "run_store": str(tmp_path / "runs"),
                                    "figures_dir": str(tmp_path / "figures")}))
    notebook = ROOT / "notebooks" / "04_kurtosis.ipynb"
    with pytest.raises(SystemExit) as exit:
        reproduce.main(["--preset", str(mine), "--out", str(tmp_path / "out"), str(notebook)])
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        "python -m imprf_utils.report.reproduce: error: 04_kurtosis.ipynb: seeds: got [0, 0], expected distinct seeds "
        f"(a repeated seed trains the same network twice) (as run: {tmp_path / 'out' / notebook.name})\n"
    )
    assert not (tmp_path / "runs").exists()


def test_report_says_which_parameters_differ_from_the_preset(report):
    out, path, figures = report
    judged = judge([Claim("claim", "local", "Fig. 4A", np.array([0.1, 0.2, 0.3]), "greater", 0.05)])
    changed = {**load_preset("smoke"), "steps": 200}
    write_claims_record(judged, path.stem, dataset="skewed_texture", preset="smoke", figures_dir=figures, parameters=changed)
    index = write_index(out, "smoke", [(path, 1.0)], figures, PRESET).read_text()
    assert "preset smoke changed: steps=200, commit" in index


@pytest.mark.notebooks
def test_results_are_written_under_results_preset_with_their_figures_and_no_volatile_metadata(tmp_path, monkeypatch):
    """``--results``: a preset's committed results, results/<preset>/ (notebooks) and results/<preset>/<dataset>/."""
    monkeypatch.setattr(reproduce, "RESULTS", tmp_path / "results")
    monkeypatch.setenv("IMPRF_PROGRESS", "0")
    smoke = tmp_path / "tiny.yaml"
    smoke.write_text(yaml.safe_dump({**load_preset("smoke"), "run_store": str(tmp_path / "runs")}))
    notebook = ROOT / "notebooks" / "00_data_and_gaussian_clone.ipynb"
    assert reproduce.main(["--preset", str(smoke), "--results", str(notebook)]) == 0
    executed = tmp_path / "results" / "tiny" / notebook.name
    nb = nbformat.read(executed, as_version=4)
    assert "papermill" not in nb.metadata and not any("papermill" in c.metadata for c in nb.cells)
    assert list((tmp_path / "results" / "tiny" / "skewed_texture").glob("*.png"))
    assert not list((tmp_path / "results" / "tiny").glob("*.html"))
