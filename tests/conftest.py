"""Shared fixtures. Triton must see TRITON_INTERPRET=1, and numba NUMBA_ENABLE_CUDASIM=1, before
they are first imported, so both are set here, before any test module imports anything."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
os.environ.setdefault("KERNBENCH_THREADS", "2")

import shutil  # noqa: E402
import tempfile  # noqa: E402

# Compiler caches of the tests that compile in this process (the worker fixture), private to
# the test process and removed at its end, like a run's (kernbench.runner.RunSettings.scratch):
# the defaults (/tmp/torchinductor_<user>, ~/.triton/cache) grow by a GB over many sessions.
_CACHES = tempfile.mkdtemp(prefix="kernbench-tests-")
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(_CACHES, "inductor"))
os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(_CACHES, "triton"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from kernbench.case import CaseSettings  # noqa: E402
from kernbench.discovery import discover  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: Enough to exercise every step of a case (compile, timing, accuracy, memory) quickly.
FAST = CaseSettings(budget_s=0.0, min_samples=2, max_samples=3, min_block_s=1e-4,
                    warmup_s=0.0, timeout_s=120)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHES, ignore_errors=True)


@pytest.fixture(scope="session")
def kernels():
    return discover([])


@pytest.fixture(scope="session")
def worker():
    from kernbench.worker import Worker

    return Worker(threads=2)


def write_kernel(root: Path, name: str, spec_src: str, backends: dict[str, str]) -> Path:
    """Make a kernel folder under `root` (for --kernels tests)."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "spec.py").write_text(spec_src)
    for family, src in backends.items():
        (folder / f"{name}_{family}.py").write_text(src)
    return folder


def case_record(cid: str, samples=None, status: str = "ok", per_sample_calls: int = 1,
                **extra) -> dict:
    """A case record as the worker writes one, for tests that write results files by hand (the
    gate, compare, the results reader, output paths). Its fields come from the id
    (kernel/backend/device/dtype/mode/k=v,...); `samples` (seconds per call) become the `time`
    block with its median, min, IQR and count; `extra` adds or replaces fields."""
    import numpy as np

    kernel, backend, device, dtype, mode, params = cid.split("/")
    rec = {"type": "case", "id": cid, "kernel": kernel, "backend": backend, "variant": "",
           "device": device, "dtype": dtype, "mode": mode,
           "params": {k: int(v) for k, v in (p.split("=") for p in params.split(",") if p)},
           "status": status, "reason": None, "flags": [],
           "accuracy": {"rel_l2": 1e-7, "tolerance": 2e-6, "passed": status == "ok"}}
    if samples is not None:
        s = [float(x) for x in samples]
        q1, median, q3 = np.percentile(s, [25, 50, 75])
        rec["time"] = {"samples_s": s, "per_sample_calls": per_sample_calls,
                       "median_s": float(median), "min_s": min(s), "iqr_s": float(q3 - q1),
                       "n_samples": len(s)}
    rec.update(extra)
    return rec
