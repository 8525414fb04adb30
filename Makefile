# Two jobs a newcomer needs: `make quickstart` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: quickstart test bench setup chromium

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# Headless Chromium from Debian for the real-browser test (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

quickstart: setup
	$(PY) scripts/quickstart.py

test: setup chromium
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q --nbval notebooks

bench: setup
	$(PY) -m benchmarks
