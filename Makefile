# make run: set up and run loadpilot on this machine.  make test: set up and pass every check.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: run test bench lint typecheck unit clean

$(PY):
	python3 -m venv $(VENV)

# The app alone: what `make run` needs.
$(VENV)/.run-installed: pyproject.toml | $(PY)
	$(PIP) -e .
	touch $@

# Everything the tests need: Debian packages first (libvirt-python compiles against libvirt-dev).
$(VENV)/.dev-installed: pyproject.toml scripts/system-deps.sh | $(PY)
	scripts/system-deps.sh test
	$(PIP) -e '.[dev,postgres,libvirt]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(VENV)/bin/loadpilot up --config examples/loadpilot.toml

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy

unit: $(VENV)/.dev-installed
	scripts/system-deps.sh test
	$(VENV)/bin/pytest

test: lint typecheck unit

bench: $(VENV)/.dev-installed
	scripts/system-deps.sh bench
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache examples/.loadpilot
