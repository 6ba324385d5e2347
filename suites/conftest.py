"""Every case of a kernbench suite as a pytest-benchmark test, for people who live in pytest:

    .venv/bin/python -m pytest suites/ -n 0 --benchmark-only            # suites/smoke.toml
    .venv/bin/python -m pytest suites/ -n 0 --benchmark-only --kernbench-suite suites/cpu.toml \
        --kernbench-kernel softmax --kernbench-backend numpy --benchmark-json out.json

(`-n 0`: pyproject's addopts turn on pytest-xdist, and pytest-benchmark refuses
`--benchmark-only` under xdist.)

The cases run in the pytest process (frameworks imported here, unlike `kernbench run`, which
isolates each backend family in a worker process), timed by pytest-benchmark's own loop on one
input set (a warm cache: pytest-benchmark has no input rotation). The node ids are
`suites/test_suites.py::test_case[<case id>]`, the fullname `kernbench export` writes, so the two
sources line up in `pytest-benchmark compare`. `make test` never collects this folder (its
testpaths are tests/).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports triton

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser) -> None:
    group = parser.getgroup("kernbench")
    group.addoption("--kernbench-suite", default=os.environ.get(
        "KERNBENCH_SUITE", str(ROOT / "suites" / "smoke.toml")),
        help="suite TOML whose cases become tests (default suites/smoke.toml; KERNBENCH_SUITE)")
    for name in ("kernel", "backend", "dtype"):
        group.addoption(f"--kernbench-{name}", action="append", default=[],
                        help=f"only this {name} (repeatable)")


def pytest_generate_tests(metafunc) -> None:
    if "kernbench_case" not in metafunc.fixturenames:
        return
    from kernbench.discovery import discover
    from kernbench.suite import filter_cases, load_suite

    opt = metafunc.config.getoption
    kernels = discover([])
    suite = load_suite(opt("--kernbench-suite"), kernels)
    cases = filter_cases(suite.cases, kernels=opt("--kernbench-kernel"),
                         backends=opt("--kernbench-backend"), dtypes=opt("--kernbench-dtype"),
                         known_kernels=kernels)
    metafunc.parametrize("kernbench_case", cases, ids=[p.case.id for p in cases])


@pytest.fixture(scope="session")
def kernbench_worker():
    from kernbench.worker import Worker

    return Worker(int(os.environ.get("KERNBENCH_THREADS", os.cpu_count() or 1)))
