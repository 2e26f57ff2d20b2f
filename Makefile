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

# The audit checks every installed distribution but the project itself (editable) against PyPI's
# advisories. --strict: a package that could not be checked (the service unreachable, or not
# knowing that version) fails the audit instead of being skipped, so an audit that checked nothing
# cannot pass. A known vulnerability with no fixed release here is ignored by its ID, with the
# reason, in AUDIT_IGNORE (--ignore-vuln ID ...); none is.
AUDIT_IGNORE ?=

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check floorbridge tests bench run.py
	$(VENV)/bin/mypy floorbridge run.py
	$(VENV)/bin/lint-imports
	$(PY) -m pip freeze --all --exclude-editable > $(VENV)/audit-requirements.txt
	$(VENV)/bin/pip-audit --strict --no-deps --disable-pip --progress-spinner off $(AUDIT_IGNORE) \
		-r $(VENV)/audit-requirements.txt \
		|| { echo "make lint: the dependency audit failed (a known vulnerability, or a package the service" \
		          "could not check: see above)" >&2; exit 1; }

unit: $(VENV)/.installed-test
	bash scripts/test-services.sh
	$(PY) -m pytest

test: lint unit

bench: $(VENV)/.installed-test
	$(PY) bench/feeds.py

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache
