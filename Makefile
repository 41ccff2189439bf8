# imprf: `make reproduce` runs the notebook suite, `make test` runs the tests.
# Both create .venv (pip install -e '.[dev]', torch pinned in pyproject.toml) on first use.
# PIP_OPTIONS goes to every pip install, e.g. PyTorch's CPU wheels (README, "Installing"):
#   make PIP_OPTIONS="--index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple" reproduce

PYTHON ?= python3
PIP_OPTIONS ?=
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= default
OUT ?= build/$(basename $(notdir $(PRESET)))
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(PIP_OPTIONS) --upgrade pip
	$(PY) -m pip install --quiet $(PIP_OPTIONS) -e '.[dev]'
	touch $@

# The project's execution paths run with pinned CPU numerics (imprf_utils/numerics.py,
# docs/determinism.md): the same bits on any x86-64 machine with AVX2.
PINNED := $(PY) -m imprf_utils.numerics --
TEST_OUT := $(CURDIR)/build/test
GOLDEN := notebooks/01_ica_vs_pca.ipynb notebooks/03_imp_vs_oneshot_vs_random.ipynb
# Notebooks whose default run CI cannot afford: `make notebooks` re-executes them; `make test`
# smoke-runs them (tests/test_smoke_notebooks.py) and checks their committed claims record
# (tests/test_claims.py) instead of nbval.
NOT_IN_NBVAL := notebooks/06_ablations.ipynb notebooks/07_robustness.ipynb notebooks/08_batchnorm.ipynb
NBVAL_NOTEBOOKS := $(filter-out $(NOT_IN_NBVAL),$(NOTEBOOKS))

.PHONY: reproduce test notebooks lab clean-runs

# Run every notebook with the preset's parameters into $(OUT); figures go to build/<preset>/figures.
reproduce: $(VENV)/.installed
	$(PINNED) $(PY) -m imprf_utils.report.reproduce --preset $(PRESET) --out $(OUT) $(NOTEBOOKS)

# Unit tests (two processes, one torch thread each); the tests that run notebooks (smoke preset, emulated machines,
# the nbval guard; one process per test file, as they share a run store per file); nbval of the committed notebooks
# but NOT_IN_NBVAL (re-executed with their default parameters, figures and run store under build/test); their claims
# records against the committed ones; a clean checkout after.
PYTEST := IMPRF_PROGRESS=0 $(PINNED) $(PY) -m pytest -q -p no:cacheprovider
test: $(VENV)/.installed
	@mkdir -p $(TEST_OUT) && (git status --porcelain 2>/dev/null || true) > $(TEST_OUT)/status.before
	$(PYTEST) -m "not notebooks" -n 2 tests
	$(PYTEST) -m notebooks -n 2 --dist loadfile tests
	IMPRF_PROGRESS=0 IMPRF_FIGURES=$(TEST_OUT)/figures IMPRF_RUN_STORE=$(TEST_OUT)/runs $(PINNED) \
		$(PY) -m pytest -q --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
		-p no:cacheprovider $(NBVAL_NOTEBOOKS)
	$(PY) -m imprf_utils.report.tables $(TEST_OUT)/figures --compare-with figures --preset default \
		--notebooks $(foreach n,$(NBVAL_NOTEBOOKS),$(shell basename $(n) | cut -c1-2))
	@(git status --porcelain 2>/dev/null || true) > $(TEST_OUT)/status.after
	@diff $(TEST_OUT)/status.before $(TEST_OUT)/status.after \
		|| (echo "make test changed the checkout (lines above): a run wrote into the tracked tree"; exit 1)

# Re-execute the committed notebooks in place with their defaults, writing the tracked figures/ and claims
# records, then the smoke-preset golden copies of tests/test_portability.py (maintainers).
notebooks: $(VENV)/.installed
	$(PINNED) $(PY) -m imprf_utils.report.reproduce --in-place $(NOTEBOOKS)
	$(PINNED) $(PY) -m imprf_utils.report.reproduce --golden tests/golden $(GOLDEN)

# JupyterLab refuses to start as root (a container's usual user) without --allow-root.
lab: $(VENV)/.installed
	$(PINNED) $(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks

clean-runs:
	rm -rf runs build
