"""`kernbench run`: load a suite, filter it, write the run header, stream case records."""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import ceilings as ceilings_mod
from . import environment
from .discovery import discover
from .errors import UsageError
from .results import SCHEMA, RunWriter
from .runner import ISOLATION, RunSettings, run_cases
from .suite import filter_cases, load_suite


@dataclass
class RunOptions:
    suite: str
    output: str | None = None
    kernels_dirs: tuple[str, ...] = ()
    kernel: tuple[str, ...] = ()
    backend: tuple[str, ...] = ()
    dtype: tuple[str, ...] = ()
    device: tuple[str, ...] = ()
    threads: int | None = None
    isolate: str = "group"
    calibrate: str = "cached"  # cached | force | skip
    progress: bool = True
    allocator: str | None = None  # None: RunSettings' default


def default_output(suite_name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"{suite_name}-{stamp}.jsonl"


def execute_run(opts: RunOptions) -> Path:
    if opts.isolate not in ISOLATION:
        raise UsageError(f"--isolate: unknown mode {opts.isolate!r}; allowed: "
                         f"{', '.join(ISOLATION)}")
    kernels = discover(list(opts.kernels_dirs))
    suite = load_suite(opts.suite, kernels)
    cases = filter_cases(suite.cases, kernels=opts.kernel, backends=opts.backend,
                         dtypes=opts.dtype, devices=opts.device, known_kernels=kernels)
    if not cases:
        raise UsageError(f"{opts.suite}: no case matches the filters")
    threads = opts.threads or suite.threads or os.cpu_count() or 1
    if threads < 1:
        raise UsageError(f"--threads: must be at least 1, got {threads}")
    settings = RunSettings(threads=threads, isolate=opts.isolate)
    if opts.allocator is not None:
        settings.allocator = opts.allocator
    mach, soft = environment.machine(), environment.software()
    fingerprint = environment.fingerprint(mach, soft)
    ceilings: dict = {}
    if opts.calibrate != "skip":
        print(f"kernbench: measuring this machine's ceilings ({opts.calibrate})",
              file=sys.stderr)
        ceilings = ceilings_mod.load_or_measure(fingerprint, threads, settings.worker_env({}),
                                                force=opts.calibrate == "force")
    out = Path(opts.output) if opts.output else default_output(suite.name)
    if out.exists():
        out.unlink()  # a fresh run; resuming is `--resume`
    worker_env = settings.worker_env({})
    header = {
        "type": "run", "schema": SCHEMA, "run_id": uuid.uuid4().hex[:12],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "suite": suite.name,
        "suite_path": suite.path, "description": suite.description,
        "git": environment.git_info(), "machine": mach, "software": soft,
        "fingerprint": fingerprint,
        "settings": {"threads": threads, "isolate": opts.isolate,
                     "allocator": settings.allocator,
                     "env": environment.relevant_env(worker_env),
                     "filters": {"kernel": list(opts.kernel), "backend": list(opts.backend),
                                 "dtype": list(opts.dtype), "device": list(opts.device)}},
        "ceilings": ceilings,
        "kernels": {name: {"path": str(k.folder), "code_hash": k.code_hash()}
                    for name, k in kernels.items()
                    if any(p.case.kernel == name for p in cases)},
        "n_cases": len(cases),
    }
    bar = _progress(len(cases), opts.progress)
    counts: dict[str, int] = {}
    with RunWriter(out, header) as writer:
        def emit(record: dict) -> None:
            writer.write(record)
            counts[record["status"]] = counts.get(record["status"], 0) + 1

        def progress(p) -> None:
            bar.set_description(p.case.id[:60])
            bar.update(0 if bar.n == 0 and not counts else 1)

        try:
            run_cases(cases, settings, ceilings, emit, progress)
        except KeyboardInterrupt:
            bar.close()
            print(f"\nkernbench: interrupted; {sum(counts.values())} finished cases are in {out}",
                  file=sys.stderr)
            raise
        finally:
            bar.update(1)
            bar.close()
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"kernbench: {len(cases)} cases ({summary}) -> {out}", file=sys.stderr)
    return out


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled or not sys.stderr.isatty(), unit="case",
                file=sys.stderr, dynamic_ncols=True)
