# imprf: `make reproduce` runs the notebook suite, `make test` runs the tests.
# Both create .venv (pip, torch CPU wheel pinned in pyproject.toml) on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= default
OUT ?= build/$(PRESET)
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: reproduce test notebooks lab clean-runs

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Run every notebook with the preset's parameters into $(OUT); figures go to figures/<dataset>/.
reproduce: $(VENV)/.installed
	IMPRF_PROGRESS=0 $(PY) -m imprf_utils.reproduce --preset $(PRESET) --out $(OUT) $(NOTEBOOKS)

# Unit tests, then nbval of the committed notebooks (re-executed with their default parameters).
test: $(VENV)/.installed
	IMPRF_PROGRESS=0 $(PY) -m pytest -q tests
	IMPRF_PROGRESS=0 $(PY) -m pytest -q --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider $(NOTEBOOKS)

# Re-execute the committed notebooks in place with their default parameters (maintainers).
notebooks: $(VENV)/.installed
	IMPRF_PROGRESS=0 $(PY) -m imprf_utils.reproduce --in-place $(NOTEBOOKS)

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks

clean-runs:
	rm -rf runs build
