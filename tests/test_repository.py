"""The repository cites only what it holds, and data/ holds what its README promises.

Every text file of the repository (README, docs, the library, tests, notebooks' markdown and
code cells, presets, benchmarks, data) is searched for references to files: a path to a
Markdown file, or to a file in one of the repository's folders, must resolve inside the
repository (from the citing file's folder or from the root); no text may point into a
``shared/`` folder of notes that ship elsewhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from imprf_utils.data.superclasses import BUILTIN, read_mapping
from imprf_utils.training.config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ["README.md", "Makefile", "pyproject.toml", "environment.yml", ".ci", "docs", "imprf_utils", "tests",
           "notebooks", "presets", "benchmarks", "data"]
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".cfg", ".txt", ".csv", ".ipynb", ""}
SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", "cache"}
FOLDERS = "|".join(re.escape(f) for f in ("docs", "imprf_utils", "tests", "notebooks", "presets", "benchmarks", "data"))

MARKDOWN = re.compile(r"(?<![\w./:-])((?:\.{1,2}/)*(?:[\w-]+/)*[\w.-]+\.md)\b")
"""A Markdown file's name or relative path (URLs and absolute paths excluded)."""
IN_FOLDER = re.compile(rf"(?<![\w./:-])((?:{FOLDERS})/(?:[\w-]+/)*[\w-]+\.(?:py|md|yaml|csv|txt|cfg|ipynb))\b")
"""A path into one of the repository's folders, e.g. benchmarks/run.py."""
OUTSIDE = re.compile(r"(?<![\w./-])shared/")
"""A relative path into a shared/ folder (an absolute /shared/... example path is not one)."""

PLACEHOLDERS = {"NAME", "NN"}
"""Words that make a file name stand for any name: ``presets/NAME.yaml``, ``notebooks/NN_name.ipynb``."""
PATH_JOIN = re.compile(r"""(["'])\s*/\s*\1""")
"""Python's ``ROOT / "docs" / "x.md"``: joined to ``"docs/x.md"`` before the line is searched."""


def scanned_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for p in candidates:
            if p.suffix in TEXT_SUFFIXES and not SKIPPED_PARTS & set(p.relative_to(ROOT).parts):
                files.append(p)
    return [p for p in files if p != Path(__file__).resolve()]


def text_lines(path: Path) -> list[tuple[str, str]]:
    """(where, line) of a file's text; for a notebook, its cells' sources (not their outputs)."""
    where = str(path.relative_to(ROOT))
    if path.suffix == ".ipynb":
        notebook = nbformat.read(path, as_version=4)
        return [
            (f"{where} cell {i}", line)
            for i, cell in enumerate(notebook.cells)
            for line in cell.source.splitlines()
        ]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return []
    return [(f"{where}:{n}", line) for n, line in enumerate(lines, 1)]


def resolves(citing: Path, reference: str) -> bool:
    """A reference exists beside the citing file or from the root; an executed copy of a notebook
    (tests/golden/, results/PRESET/) cites as its source in notebooks/ does."""
    if PLACEHOLDERS & set(re.split(r"[_.-]", Path(reference).stem)):
        return True
    source = ROOT / "notebooks" / citing.name
    folders = [citing.parent, ROOT] + ([source.parent] if citing.suffix == ".ipynb" and source.exists() else [])
    return any((folder / reference).exists() for folder in folders)


def problems(line: str, citing: Path) -> list[str]:
    """What a line of ``citing`` refers to outside the repository."""
    line = PATH_JOIN.sub("/", line)
    found = ["a shared/ folder"] if OUTSIDE.search(line) else []
    references = dict.fromkeys(r for pattern in (MARKDOWN, IN_FOLDER) for r in pattern.findall(line))
    found += [r for r in references if not resolves(citing, r)]
    return found


def bad_references(path: Path) -> list[str]:
    return [
        f"{where}: {problem} is not in the repository: {line.strip()}"
        for where, line in text_lines(path)
        for problem in problems(line, path)
    ]


def test_the_scan_covers_the_repository():
    files = {str(p.relative_to(ROOT)) for p in scanned_files()}
    for expected in ("README.md", "docs/papers.md", "imprf_utils/measures/shape.py", "presets/default.yaml",
                     "notebooks/03_imp_vs_oneshot_vs_random.ipynb", "benchmarks/run.py", "data/README.md"):
        assert expected in files


def test_the_patterns_catch_what_they_must():
    """The checker on known lines, as if they were in docs/: outside or missing references are found."""
    cases = {
        "see shared/notes_we_lack.md, task (e)": 2,  # the folder, and a file the repository does not hold
        "(papers.md: the formula is unknown)": 0,  # from docs/, papers.md is docs/papers.md
        "DESIGN.md (shared)": 1,
        "timings in benchmarks/README.md and benchmarks/nowhere.py": 1,
        "see [controls](controls.md), ../README.md and docs/determinism.md": 0,
        "--data-dir /shared/imagenet32 --run-store /shared/runs": 0,
        "https://example.org/notes/notes_we_lack.md": 0,
        "papermill -f presets/NAME.yaml, notebooks/NN_name.ipynb": 0,
        'ROOT / "docs" / "controls.md", ROOT / "docs" / "nowhere.md"': 1,
    }
    for line, count in cases.items():
        assert len(problems(line, ROOT / "docs" / "probe.md")) == count, line
    assert problems("(papers.md: the formula is unknown)", ROOT / "notebooks" / "probe.ipynb") == ["papers.md"]
    copy = ROOT / "tests" / "golden" / "01_ica_vs_pca.ipynb"  # an executed copy cites as its source does
    assert problems("[docs/performance.md](../docs/performance.md)", copy) == []
    assert problems("[nowhere](../docs/nowhere.md)", copy) == ["../docs/nowhere.md"]
    assert problems("[docs/performance.md](../docs/performance.md)", ROOT / "tests" / "golden" / "probe.ipynb") != []


@pytest.mark.parametrize("path", scanned_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_to_files_outside_the_repository(path):
    found = bad_references(path)
    assert not found, "replace these with a page in docs/ (or add the file):\n" + "\n".join(found)


def test_the_example_superclass_mapping_parses_to_the_builtin_grouping():
    path = ROOT / "data" / "superclasses" / "cifar10_vehicles_animals.csv"
    mapping, names = read_mapping(path, 10)
    assert mapping.tolist() == BUILTIN["cifar10"][0]  # the same grouping as superclasses: semantic
    assert len(names) == 2
    ExperimentConfig(dataset="cifar10", superclasses=str(path))  # accepted as a notebook parameter


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_generated_caches_and_user_datasets_under_data_are_ignored_by_git():
    for ignored in ("data/cache/skewed_texture.pt", "data/imagenet32/val_data", "data/cifar10/cifar-10-batches-py"):
        assert subprocess.run(["git", "check-ignore", "-q", ignored], cwd=ROOT).returncode == 0, ignored
    for kept in ("data/README.md", "data/superclasses/cifar10_vehicles_animals.csv"):
        assert subprocess.run(["git", "check-ignore", "-q", kept], cwd=ROOT).returncode == 1, kept
