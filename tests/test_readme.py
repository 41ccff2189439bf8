"""The README and its docs pages say what the code and the committed records say.

- The papermill commands of the README and of docs/*.md run as written: the same command, with the
  smoke preset and temporary output paths swapped in. Each ```bash block is split into commands
  (backslash continuations joined, comments dropped). Every papermill command is checked statically
  (its notebook exists, it declares every parameter the command passes, lists go with ``-y``); every
  one that needs no user data (no ``data_dir``) is also run from the repository's root with its
  options and parameters untouched, except that

  - its preset file (``-f``) becomes ``presets/smoke.yaml`` (papermill applies ``-f`` before
    ``-y`` and ``-p``, so the command's own parameters still apply on top of it);
  - its output notebook goes to a temporary folder;
  - ``-p figures_dir`` and ``-p run_store`` point into that folder (appended last, so they win).

- docs/results.md's claims tables are the committed records, and every number of the README's
  results-at-a-glance table is one of a committed record's or a figure's JSON.
- The README stays a five-minute read (at most ~150 lines) that links every docs page; the pages
  written for users wrap their prose, and the glossary defines the terms the README uses.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import papermill
import pytest
import yaml

from imprf_utils.errors import ConfigError
from imprf_utils.report.records import find_records, read_claims_record
from imprf_utils.report.tables import markdown_summary
from imprf_utils.training import presets
from imprf_utils.training.config import ExperimentConfig
from conftest import run_with_a_kernel

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
RESULTS = ROOT / "docs" / "results.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
"""Where the suite's commands are shown: the README and the docs pages."""
USER_PAGES = ["docs/results.md", "docs/performance.md", "docs/sweeps.md", "docs/troubleshooting.md",
              "docs/installing.md", "docs/glossary.md", "docs/running.md"]
"""The docs pages written for users, each linked from the README."""
SMOKE = ROOT / "presets" / "smoke.yaml"
WITH_VALUE = {"-k", "--kernel", "--cwd", "-y", "--parameters_yaml", "-b", "--parameters_base64", "--engine",
              "--log-level", "--start-timeout", "--execution-timeout", "--language", "--prepare-only"}
WITH_TWO_VALUES = {"-p", "--parameters", "-r", "--parameters_raw"}
PRESET_FILE = {"-f", "--parameters_file"}


def bash_commands(text: str) -> list[str]:
    """The commands of the text's ```bash blocks, continuation lines joined, comment lines dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip() and not command.lstrip().startswith("#"):
                commands.append(command.strip())
    return commands


def papermill_commands() -> list[list[str]]:
    """Every papermill command of the README and the docs pages, each once."""
    texts = [page.read_text(encoding="utf-8") for page in PAGES]
    commands = dict.fromkeys(c for text in texts for c in bash_commands(text))
    tokens = [shlex.split(c, comments=True) for c in commands]
    return [t for t in tokens if t and Path(t[0]).name == "papermill"]


def smoke_version(tokens: list[str], tmp: Path) -> list[str]:
    """The command with the smoke preset, its output notebook in ``tmp`` and figures and run store there too."""
    options, positional, i = [], [], 1
    while i < len(tokens):
        token = tokens[i]
        if token in PRESET_FILE:
            i += 2
        elif token in WITH_TWO_VALUES:
            options += tokens[i : i + 3]
            i += 3
        elif token in WITH_VALUE:
            options += tokens[i : i + 2]
            i += 2
        elif token.startswith("-"):
            options.append(token)
            i += 1
        else:
            positional.append(token)
            i += 1
    assert len(positional) == 2, f"expected an input and an output notebook in {shlex.join(tokens)}"
    notebook, _ = positional
    return [
        sys.executable, "-m", "papermill", "-f", str(SMOKE), *options, notebook, str(tmp / Path(notebook).name),
        "-p", "figures_dir", str(tmp / "figures"), "-p", "run_store", str(tmp / "runs"),
    ]


def passed_parameters(tokens: list[str]) -> dict[str, object]:
    """The parameters a papermill command passes with -p, -r and -y (not its preset file)."""
    parameters: dict[str, object] = {}
    for i, token in enumerate(tokens):
        if token in ("-y", "--parameters_yaml"):
            parameters.update(yaml.safe_load(tokens[i + 1]))
        elif token in WITH_TWO_VALUES:
            parameters[tokens[i + 1]] = tokens[i + 2]
    return parameters


COMMANDS = papermill_commands()
RUNNABLE = [tokens for tokens in COMMANDS if "data_dir" not in passed_parameters(tokens)]


def test_the_readme_shows_papermill_with_lists_passed_by_y():
    assert len(RUNNABLE) >= 2
    readme = [shlex.split(c) for c in bash_commands(README.read_text(encoding="utf-8"))]
    assert any(tokens and Path(tokens[0]).name == "papermill" for tokens in readme), "the README shows one notebook run"
    flat = [" ".join(tokens) for tokens in COMMANDS]
    assert any(" -y " in f" {c} " for c in flat), "show how to pass a list or a dict: -y \"seeds: [0, 1]\""
    for tokens in COMMANDS:
        for i, token in enumerate(tokens[:-2]):
            if token in WITH_TWO_VALUES:
                value = tokens[i + 2]
                assert not value.startswith(("[", "{")), f"-p passes {value!r} as text; use -y: {shlex.join(tokens)}"


def test_smoke_version_swaps_only_the_preset_and_the_outputs(tmp_path):
    written = shlex.split(
        ".venv/bin/papermill -k python3 --cwd notebooks -f presets/paper.yaml -y 'seeds: [0, 1]' "
        "-p data_dir /data/x -p figures_dir ../build/f notebooks/00_data_and_gaussian_clone.ipynb build/00.ipynb"
    )
    assert smoke_version(written, tmp_path) == [
        sys.executable, "-m", "papermill", "-f", str(SMOKE), "-k", "python3", "--cwd", "notebooks",
        "-y", "seeds: [0, 1]", "-p", "data_dir", "/data/x", "-p", "figures_dir", "../build/f",
        "notebooks/00_data_and_gaussian_clone.ipynb", str(tmp_path / "00_data_and_gaussian_clone.ipynb"),
        "-p", "figures_dir", str(tmp_path / "figures"), "-p", "run_store", str(tmp_path / "runs"),
    ]


@pytest.mark.parametrize("tokens", COMMANDS, ids=lambda tokens: shlex.join(tokens[1:])[:80])
def test_the_readme_papermill_command_passes_only_parameters_its_notebook_declares(tokens):
    notebook = ROOT / next(t for t in tokens[1:] if t.endswith(".ipynb"))
    declared = set(papermill.inspect_notebook(str(notebook)))
    unknown = sorted(set(passed_parameters(tokens)) - declared)
    assert not unknown, f"{notebook.name} has no parameter(s) {unknown}: {shlex.join(tokens)}"


@pytest.mark.notebooks
@pytest.mark.parametrize("tokens", RUNNABLE, ids=lambda tokens: shlex.join(tokens[1:])[:80])
def test_the_readme_papermill_command_runs(tokens, tmp_path):
    command = smoke_version(tokens, tmp_path)
    env = {**os.environ, "IMPRF_PROGRESS": "0"}
    result = run_with_a_kernel(command, cwd=ROOT, env=env, timeout=900)
    assert result.returncode == 0, f"{shlex.join(command)}\n{result.stderr[-4000:]}"
    output = Path(command[-7])  # the notebook as executed, outputs included
    assert output.parent == tmp_path and output.exists()


RESULT_FOLDERS = sorted(str(p.parent.relative_to(ROOT)) for p in (ROOT / "results").glob("*/*/claims_[0-9][0-9].json"))
"""Each committed preset's records other than the default's: results/<preset>/<dataset>."""


@pytest.mark.parametrize("folders", [("figures/skewed_texture", "figures/nlgp"), *((f,) for f in dict.fromkeys(RESULT_FOLDERS))],
                         ids=" + ".join)
def test_the_results_page_claims_tables_are_the_committed_records(folders):
    """docs/results.md's tables are generated from the records (python -m imprf_utils.report.tables figures/...), so
    the text says what the committed notebooks measured: every row of every committed record is in it."""
    records = [read_claims_record(path) for folder in folders for path in find_records(ROOT / folder)]
    rows = [line for line in markdown_summary(records).splitlines() if line.startswith("| 0")]
    assert rows
    text = RESULTS.read_text(encoding="utf-8")
    assert [row for row in rows if row not in text] == []
    assert f"imprf_utils.report.tables {' '.join(folders)}`" in " ".join(text.split()), "say which command made the tables"


def test_the_results_page_titles_the_photos_record_and_has_a_section_for_the_valid_null():
    text = RESULTS.read_text(encoding="utf-8")
    assert "## The circular-scramble photos task" in text
    assert "results/README.md" in text.split("## Real photographs with a valid null", 1)[1]


NUMBER = re.compile(r"\d+(?:\.\d+)?")
FIGURE_REFERENCE = re.compile(r"Figs?\. [\dA-C]+(?:[–-][\dA-C]+)?")


def _numbers(value: object) -> set[float]:
    """The numbers a record or a figure's JSON holds, as the claims tables print them (3 significant digits),
    and those written in its strings."""
    if isinstance(value, bool):
        return set()
    if isinstance(value, (int, float)):
        return {abs(float(value)), abs(float(f"{value:.3g}"))}
    if isinstance(value, str):
        return {float(n) for n in NUMBER.findall(value)}
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return set().union(*(_numbers(v) for v in value)) if value else {float(len(value))}
    return set()


def committed_numbers() -> set[float]:
    """Every number of the committed claims records and figure JSONs (the default preset's in figures/, other
    presets' in results/), list lengths (e.g. 5 seeds) included."""
    found: set[float] = set()
    for path in sorted([*(ROOT / "figures").rglob("*.json"), *(ROOT / "results").rglob("*.json")]):
        data = json.loads(path.read_text(encoding="utf-8"))
        found |= _numbers(data) | {float(len(v)) for v in (data.get("parameters") or {}).values() if isinstance(v, list)}
    records = [*(ROOT / "figures").rglob("claims_*.json"), *(ROOT / "results").rglob("claims_*.json")]
    for row in (r for path in records for r in read_claims_record(path)["rows"]):
        found.add(float(len(row["values"])))
    return found


def glance_rows() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Results at a glance", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| 0")]


def test_every_number_of_the_readme_results_at_a_glance_comes_from_a_committed_record():
    rows = glance_rows()
    notebooks = sorted(path.name[:2] for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert [row.split("|")[1].strip() for row in rows] == notebooks, "one line per notebook"
    known = committed_numbers()
    unknown = {}
    for row in rows:
        cells = FIGURE_REFERENCE.sub("", "|".join(row.split("|")[2:]))
        numbers = [float(n) for n in NUMBER.findall(cells)]
        missing = [n for n in numbers if n not in known]
        if missing:
            unknown[row.split("|")[1].strip()] = missing
    assert not unknown, f"numbers in the README's results at a glance that no committed record holds: {unknown}"


def test_the_readme_is_a_five_minute_read_that_links_every_docs_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    for page in USER_PAGES:
        assert f"({page})" in text, f"the README links {page}"
    assert "make reproduce PRESET=smoke" in text and "1.5 h" in text


@pytest.mark.parametrize("page", ["README.md", *USER_PAGES])
def test_the_pages_wrap_their_prose(page):
    """Lines of at most 120 characters, but for table rows (markdown cannot wrap them)."""
    long = [n for n, line in enumerate((ROOT / page).read_text(encoding="utf-8").splitlines(), 1)
            if len(line) > 120 and not line.startswith("|")]
    assert long == [], f"{page}: lines {long} are over 120 characters"


GLOSSARY_TERMS = ["IMP", "oneshot", "Random pruning", "Rewind step", "level", "round", "RF width", "RF-width ratio",
                  "Compactness", "IPR", "NLGP", "Gaussian clone", "Kurtosis κ", "|κ − 3|", "Cavity score", "BatchNorm",
                  "holds", "fails", "inconclusive", "Holm", "claim", "positive control", "sanity check", "margin",
                  "Pinned numerics", "Preset", "Run store"]


def test_the_glossary_defines_the_terms_the_readme_and_the_notebooks_use():
    entries = " ".join(re.findall(r"^\*\*(.+?)\*\*", (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8"), flags=re.M))
    assert [term for term in GLOSSARY_TERMS if term.lower() not in entries.lower()] == []


def raised(call) -> str:
    """The message of the ConfigError that ``call`` raises."""
    with pytest.raises(ConfigError) as error:
        call()
    return str(error.value)


QUOTED_ERRORS = {
    "unknown parameter": lambda: raised(lambda: presets.check_parameter_names({"In": ["# Parameters\nstep = 200\n"]})),
    "unknown preset": lambda: raised(lambda: presets.load_preset("fast")),
    "unknown dataset": lambda: raised(lambda: ExperimentConfig(dataset="mnist")),
    "unknown dataset option": lambda: raised(lambda: ExperimentConfig(dataset_options={"sigmaa": 1.0})),
    "rounds below compare_levels": lambda: raised(lambda: ExperimentConfig(rounds=3)),
    "prune rate": lambda: raised(lambda: ExperimentConfig(prune_rate=1.0)),
    "rewind step": lambda: raised(lambda: ExperimentConfig(steps=40, rewind_step=40)),
}


@pytest.mark.parametrize("case", QUOTED_ERRORS)
def test_the_troubleshooting_page_quotes_the_codes_own_error_messages(case):
    """docs/troubleshooting.md quotes each error as the code raises it today, so a changed message fails here."""
    message = QUOTED_ERRORS[case]()
    assert message in (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8"), message
