# kernbench: `make bench` and `make test` work from a fresh clone; each sets up .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch is pinned (constraints.txt) and installed first: an unpinned torch pulls GBs of CUDA wheels.
PIP    := $(PY) -m pip install --constraint constraints.txt
SUITE  ?= suites/cpu.toml
RESULTS ?= results/latest.jsonl
REPORT ?= reports/latest.html

.PHONY: install bench test lint report gate profile clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[all,dev]'
	touch $(STAMP)

bench: install
	$(VENV)/bin/kernbench run $(SUITE) -o $(RESULTS)
	$(VENV)/bin/kernbench show $(RESULTS)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check src tests kernels

clean:
	rm -rf $(VENV) reports/*.html
