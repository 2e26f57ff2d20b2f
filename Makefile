# floorbridge: `make run` serves the demo meetings, `make test` runs the whole suite.
# Both create the virtual environment and install what they need.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CONFIG ?= config/floorbridge.example.yaml

.PHONY: run test lint unit audit bench clean

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

# The dependency audit (scripts/audit.py: pip-audit over every installed distribution but the
# project). A known vulnerability fails it. When the advisory service cannot check the installed
# versions (unreachable, or it does not know them, as on the build machines) it says so loudly
# and names the packages; `make test` then goes on, `AUDIT_STRICT=1` makes that a failure too.
# A vulnerability with no fixed release is ignored by ID, with the reason, in AUDIT_IGNORE
# (--ignore-vuln ID ...); none is.
AUDIT_IGNORE ?=
AUDIT_STRICT ?=

audit: $(VENV)/.installed-test
	@$(PY) scripts/audit.py $(AUDIT_IGNORE); rc=$$?; \
	if [ $$rc -eq 3 ] && [ -z "$(AUDIT_STRICT)" ]; then \
		echo "make audit: WARNING: the dependency audit could not be done here; nothing was checked" >&2; \
	elif [ $$rc -ne 0 ]; then exit $$rc; fi

unit: $(VENV)/.installed-test
	bash scripts/test-services.sh
	$(PY) -m pytest

test: lint unit audit

bench: $(VENV)/.installed-test
	$(PY) bench/feeds.py

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
