"""The sweep: cases -> worker processes -> records appended to the results file.

Cases are grouped by (backend family, device) and each group runs in its own worker process
(`--isolate group`, the default), so frameworks' thread pools and caches never meet; groups run
one after another, never concurrently (they would share cores and distort each other's timings).
`--isolate case` gives every case a fresh process; `--isolate none` runs in-process (debugging).

A worker that dies is replaced and its case recorded `crashed` with the signal and the tail of
its stderr; one that exceeds the case's timeout is killed and the case recorded `timeout`. Every
record is written and flushed as soon as it arrives, so nothing measured is lost.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from . import metrics
from .backends import family_of
from .backends.base import is_cuda
from .case import Case
from .ceilings import MemoryRecheck
from .lifetime import PARENT_ENV
from .suite import PlannedCase

ISOLATION = ("group", "case", "none")


@dataclass
class RunSettings:
    threads: int
    isolate: str = "group"
    #: glibc tunables: without them every fresh output above glibc's mmap threshold (32 MiB at
    #: most) is a new mapping whose pages the kernel faults in and zeroes, on every call: a
    #: write pass over the output that the kernel never asked for. hugetlb=1 makes those faults
    #: 2 MiB at a time (torch softmax 4096x4096: 20.3 -> 6.7 ms); the raised mmap and trim
    #: thresholds let malloc reuse a freed output's pages like a caching allocator (6.0 ->
    #: 4.0 ms; a 64 MiB torch clone() from 36 to 52 GB/s, as fast as copy_ into a kept
    #: buffer). Fixed for every worker and recorded in the run header.
    allocator: str = ("glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=4294967296:"
                      "glibc.malloc.trim_threshold=4294967296")
    #: address-space limit (bytes) for each worker, None for none: a runaway allocation fails
    #: inside the worker (MemoryError, recorded) instead of exhausting the machine
    memory_limit: int | None = None
    #: a case whose estimated footprint exceeds this fraction of available memory is skipped
    memory_fraction: float = 0.8
    #: the run's private folder for compiler caches and temporary files, made on first use.
    #: The inductor and Triton caches grow to ~200 MB over a cpu.toml run, so the folder is
    #: removed when the settings are closed (use them as a context manager): left behind, every
    #: run and every test sweep would keep its own copy in /tmp until the disk filled.
    scratch: str | None = None

    def scratch_dir(self) -> str:
        if self.scratch is None:
            self.scratch = tempfile.mkdtemp(prefix="kernbench-")
        return self.scratch

    def close(self) -> None:
        """Remove the scratch folder (workers are gone by then; a lingering one only loses its
        cache)."""
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def __enter__(self) -> RunSettings:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def worker_env(self, family_env: dict[str, str]) -> dict[str, str]:
        """The environment a worker starts with: threads fixed in every pool, the allocator
        setting, and run-private compiler caches (so compile time is measured cold)."""
        env = dict(os.environ)
        n = str(self.threads)
        scratch = self.scratch_dir()
        env.update({
            "KERNBENCH_THREADS": n, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n,
            "OPENBLAS_NUM_THREADS": n, "NUMBA_NUM_THREADS": n,
            "TORCHINDUCTOR_CACHE_DIR": os.path.join(scratch, "inductor"),
            "TRITON_CACHE_DIR": os.path.join(scratch, "triton"),
            "TMPDIR": os.path.join(scratch, "tmp"),
            "PYTHONUNBUFFERED": "1",
        })
        if self.threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                " intra_op_parallelism_threads=1").strip()
        if self.allocator:
            env["GLIBC_TUNABLES"] = self.allocator
        else:
            env.pop("GLIBC_TUNABLES", None)
        if self.memory_limit:
            env["KERNBENCH_MEMORY_LIMIT"] = str(self.memory_limit)
        os.makedirs(env["TMPDIR"], exist_ok=True)
        env.update(family_env)
        return env


class WorkerProcess:
    """One `python -m kernbench.worker` process speaking JSON lines over pipes."""

    module = "kernbench.worker"

    def __init__(self, env: dict[str, str]):
        self.stderr = tempfile.TemporaryFile(mode="w+b")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, start_new_session=True,
            env={**env, PARENT_ENV: str(os.getpid())})  # see kernbench.lifetime
        self._buffer = b""

    def run(self, message: dict, timeout: float) -> tuple[str, dict | str]:
        """('ok', record) | ('crashed', detail) | ('timeout', detail)."""
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return "crashed", self._death()
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.kill()
                    return "timeout", f"exceeded {timeout:g} s; {self.stderr_tail(5)}".strip()
                if not sel.select(remaining):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    self.proc.wait()
                    return "crashed", self._death()
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return "ok", json.loads(line)

    def _death(self) -> str:
        code = self.proc.wait()
        if code < 0:
            try:
                cause = f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                cause = f"killed by signal {-code}"
        else:
            cause = f"exited with code {code}"
        return f"worker {cause}; stderr: {self.stderr_tail()}"

    def stderr_tail(self, lines: int = 20) -> str:
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace").splitlines()
        text = [t for t in text if not t.startswith("[kernbench worker]")]
        return " | ".join(text[-lines:])[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.stderr.close()


def group_key(case: Case) -> tuple[str, str]:
    return family_of(case.backend).name, case.device


def order_cases(cases: Iterable[PlannedCase]) -> list[PlannedCase]:
    """Group by (family, device), keeping the suite's order within and between groups."""
    first_seen: dict[tuple[str, str], int] = {}
    cases = list(cases)
    for p in cases:
        first_seen.setdefault(group_key(p.case), len(first_seen))
    return sorted(cases, key=lambda p: first_seen[group_key(p.case)])


def message(p: PlannedCase) -> dict:
    return {"case": p.case.to_dict(), "settings": p.settings.to_dict(),
            "folder": str(p.kernel.folder), "impl": str(p.impl.path)}


def failure_record(p: PlannedCase, status: str, reason: str) -> dict:
    flags = family_of(p.case.backend).flags(p.case.backend, p.case.device)
    return {"type": "case", "id": p.case.id, **p.case.to_dict(), "status": status,
            "reason": reason, "flags": flags}


def available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def estimated_footprint(p: PlannedCase) -> float:
    """Bytes a case needs at its peak, estimated from the spec's traffic model: float64
    inputs/outputs for the reference (twice: two input draws), plus the backend's copies."""
    from .dtypes import get_format
    from .worker import MAX_COPIES, ROTATE_CACHE_MULTIPLE, last_level_cache_bytes

    spec, params = p.kernel.spec, p.case.param_dict
    f64 = float(spec.bytes(params, 8))
    native = float(spec.bytes(params, get_format(p.case.dtype).itemsize))
    rotated = 0.0 if p.settings.warm_cache else min(
        MAX_COPIES * native, ROTATE_CACHE_MULTIPLE * last_level_cache_bytes())
    return 3 * f64 + 4 * native + rotated


def memory_check(p: PlannedCase, settings: RunSettings) -> str | None:
    """The reason to skip a case that would not fit, or None."""
    need = estimated_footprint(p)
    avail = available_memory()
    if settings.memory_limit:
        avail = min(avail or settings.memory_limit, settings.memory_limit)
    if avail and need > settings.memory_fraction * avail:
        return (f"needs about {need / 2**30:.1f} GiB, more than {settings.memory_fraction:.0%} "
                f"of the {avail / 2**30:.1f} GiB available")
    return None


def shard_of(case_id: str, n: int) -> int:
    """Stable shard (0..n-1) of a case id: the same on every machine and every run."""
    import hashlib

    return int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "little") % n


def poisons_worker(record: dict) -> bool:
    """Whether the worker that wrote `record` must be replaced before the next case: any failure
    on a GPU. An illegal address or a launch failure is sticky (the process's CUDA context is
    unusable and every later case in the worker would fail with the same error), and an
    out-of-memory leaves the allocator fragmented; telling those apart from an honest
    `inaccurate` by the message is fragile, and a fresh worker costs seconds."""
    return record.get("status") == "failed" and is_cuda(str(record.get("device", "")))


def run_cases(cases: list[PlannedCase], settings: RunSettings, ceilings: dict,
              emit: Callable[[dict], None], progress: Callable[[PlannedCase], None] = lambda p: None
              ) -> None:
    """Run every case, passing each finished record to `emit` as soon as it exists.

    On KeyboardInterrupt the worker is killed at once (its case is lost, everything before it
    has been emitted) and the interrupt propagates."""
    recheck = MemoryRecheck(settings.threads, settings.worker_env({})) if ceilings else None
    caches = {k: v for k, v in settings.worker_env({}).items()
              if k.startswith(("TORCHINDUCTOR", "TRITON_CACHE"))}
    outer_caches = {k: os.environ.get(k) for k in caches}
    if settings.isolate == "none":
        from .worker import Worker, jsonable

        os.environ.update(caches)  # restored below: the run's scratch folder goes with the run
        worker = Worker(settings.threads)
    current: WorkerProcess | None = None
    current_key = None
    try:
        for p in order_cases(cases):
            progress(p)
            family = family_of(p.case.backend)
            missing = family.missing()
            skip = missing or memory_check(p, settings)
            if skip:
                emit(metrics.derive(failure_record(p, "skipped", skip), p.kernel.spec, ceilings))
                continue
            if settings.isolate == "none":
                # in-process: the family's environment (TRITON_INTERPRET, ...) must be set
                # before its framework's first import, which happens in its first case
                os.environ.update(family.worker_env(p.case.device))
                record = jsonable(worker.execute(p.case, p.settings, str(p.kernel.folder),
                                                 str(p.impl.path)))
            else:
                key = group_key(p.case)
                if current is not None and (key != current_key or settings.isolate == "case"):
                    current.close()
                    current = None
                if current is None:
                    current = WorkerProcess(settings.worker_env(family.worker_env(p.case.device)))
                    current_key = key
                outcome, result = current.run(message(p), p.settings.timeout_s)
                if outcome == "ok":
                    record = result
                    if poisons_worker(record):
                        current.close()
                        current = None
                else:
                    record = failure_record(p, "crashed" if outcome == "crashed" else "timeout",
                                            str(result))
                    current.close()
                    current = None
            record = metrics.derive(record, p.kernel.spec, ceilings)
            if recheck is not None and metrics.needs_roof_recheck(record, ceilings):
                memory_now = recheck.now()
                if memory_now is not None:
                    metrics.rejudge(record, ceilings, memory_now)
            emit(record)
    except KeyboardInterrupt:
        if current is not None:
            current.kill()
        raise
    finally:
        if current is not None:
            current.close()
        if settings.isolate == "none":
            for k, v in outer_caches.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
