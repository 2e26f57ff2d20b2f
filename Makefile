# floorbridge: `make run` serves the demo meetings, `make test` runs the whole suite.
# Both create the virtual environment and install what they need.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CONFIG ?= config/floorbridge.example.yaml

.PHONY: run test lint unit bench clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) scripts/check_python.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

run: $(VENV)/.installed
	$(PY) run.py --config $(CONFIG) migrate
	$(PY) run.py --config $(CONFIG) serve

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check floorbridge tests bench run.py
	$(VENV)/bin/mypy floorbridge run.py
	$(VENV)/bin/lint-imports

unit: $(VENV)/.installed-test
	bash scripts/test-services.sh
	$(PY) -m pytest

test: lint unit

bench: $(VENV)/.installed-test
	$(PY) bench/feeds.py

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
