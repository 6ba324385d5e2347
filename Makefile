# kernbench: `make bench` and `make test` work from a fresh clone; each sets up .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch is pinned (constraints.txt) and installed first: an unpinned torch pulls GBs of CUDA wheels.
PIP    := $(PY) -m pip install --constraint constraints.txt
# The pin fixes torch's version, not its build: PyPI's torch 2.13.0 for Linux x86_64 is the CUDA
# build. Where pip is not already configured with a CPU wheel (this project's machines find one
# through pip's find-links), name PyTorch's CPU index:
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
TORCH  := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX) torch==2.13.0+cpu,torch==2.13.0)
SUITE  ?= suites/cpu.toml
RESULTS ?= results/latest.jsonl
REPORT ?= reports/latest.html

.PHONY: install bench test lint report gate profile clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) $(TORCH)
	$(PIP) -e '.[all,dev]'
	touch $(STAMP)

bench: install
	$(VENV)/bin/kernbench run $(SUITE) -o $(RESULTS)
	$(VENV)/bin/kernbench show $(RESULTS)
	$(VENV)/bin/kernbench report $(RESULTS) -o $(REPORT)

# The HTML report of RESULTS (make report RESULTS="base.jsonl head.jsonl" compares them).
report: install
	$(VENV)/bin/kernbench report $(RESULTS) -o $(REPORT)

# The regression gate: run GATE_SUITE now and compare it with the baseline saved for this
# machine's fingerprint (results/baselines/<fingerprint>/<suite>.jsonl). Exit 1 on a regression
# or a failed exact gate, 2 when no baseline matches this machine (none is committed: a baseline
# belongs to one machine and software set). In CI prefer A/B mode:
#   kernbench ab suites/smoke.toml --base origin/main
GATE_SUITE ?= suites/smoke.toml
GATE_RESULTS ?= results/gate-current.jsonl
gate: install
	@$(PY) -c "import pathlib, sys; from kernbench import environment as e; \
	  p = pathlib.Path('results/baselines') / e.fingerprint(e.machine(), e.software()) / \
	      (pathlib.Path('$(GATE_SUITE)').stem + '.jsonl'); \
	  p.exists() or (print(f'kernbench: error: no baseline for this machine ({p}); record one on \
	a quiet machine: kernbench run $(GATE_SUITE) -o R.jsonl && kernbench baseline save R.jsonl', \
	  file=sys.stderr), sys.exit(2))"
	$(VENV)/bin/kernbench run $(GATE_SUITE) -o $(GATE_RESULTS) --no-progress
	$(VENV)/bin/kernbench gate --current $(GATE_RESULTS) --markdown results/gate-summary.md

# Profile one case in steady state (artifacts and profile.json under results/profiles/):
#   make profile CASE=softmax/torch_eager/cpu/float32/forward/rows=4096,cols=4096
#   make profile CASE=... PROFILE_ARGS="--calls 20 --threads 1"
# then `tensorboard --logdir results/profiles` for torch cases (PyTorch Profiler tab).
CASE ?=
PROFILE_ARGS ?=
profile: install
	$(VENV)/bin/kernbench profile '$(CASE)' $(PROFILE_ARGS)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check src tests kernels

clean:
	rm -rf $(VENV) reports/*.html
