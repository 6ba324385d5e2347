"""`kernbench run`: load a suite, filter it, write the run header, stream case records."""

from __future__ import annotations

import os
import sys
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import ceilings as ceilings_mod
from . import environment
from .discovery import discover
from .errors import KernbenchWarning, UsageError
from .paths import keep_previous, same_file, writable_file
from .results import SCHEMA, RunWriter, cut_partial_line, read_run
from .runner import ISOLATION, RunSettings, run_cases, shard_of
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
    mode: tuple[str, ...] = ()
    case: tuple[str, ...] = ()  # shell-style patterns of case ids (kernbench.suite.filter_cases)
    threads: int | None = None
    isolate: str | None = None  # None: "group", or the resumed run's
    calibrate: str = "cached"  # cached | force | skip
    progress: bool = True
    allocator: str | None = None  # None: RunSettings' default
    resume: str | None = None  # an interrupted results file to complete
    shard: str | None = None  # "K/N": run the K-th of N stable slices of the cases
    dry_run: bool = False  # print the planned case ids and stop
    memory_limit: int | None = None  # bytes of address space per worker
    profile: bool = False  # also profile each measured case (kernbench.profile)


def default_output(suite_name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"{suite_name}-{stamp}.jsonl"


def execute_run(opts: RunOptions) -> Path:
    if opts.isolate is not None and opts.isolate not in ISOLATION:
        raise UsageError(f"--isolate: unknown mode {opts.isolate!r}; allowed: "
                         f"{', '.join(ISOLATION)}")
    kernels = discover(list(opts.kernels_dirs))
    suite = load_suite(opts.suite, kernels)
    cases = filter_cases(suite.cases, kernels=opts.kernel, backends=opts.backend,
                         dtypes=opts.dtype, devices=opts.device, modes=opts.mode,
                         known_kernels=kernels, case_patterns=opts.case)
    if not cases:
        raise UsageError(f"{opts.suite}: no case matches the filters")
    if opts.shard:
        k, n = parse_shard(opts.shard)
        cases = [p for p in cases if shard_of(p.case.id, n) == k - 1]
    if opts.threads is not None and opts.threads < 1:
        raise UsageError(f"--threads: must be at least 1, got {opts.threads}")
    if opts.dry_run:
        for p in cases:
            print(p.case.id)
        print(f"kernbench: {len(cases)} cases planned", file=sys.stderr)
        return Path(opts.output or "-")
    if opts.resume:
        return resume_run(opts, suite, cases)
    # checked before calibrating: a path that cannot be written fails now, not after the sweep
    out = writable_file(opts.output or default_output(suite.name), "-o", inputs=[suite.path])
    threads = opts.threads if opts.threads is not None else (suite.threads or os.cpu_count() or 1)
    settings = RunSettings(threads=threads, isolate=opts.isolate or "group",
                           memory_limit=opts.memory_limit)
    if opts.allocator is not None:
        settings.allocator = opts.allocator
    with settings:
        return fresh_run(opts, suite, kernels, cases, settings, out)


def fresh_run(opts: RunOptions, suite, kernels, cases, settings: RunSettings, out: Path) -> Path:
    """Calibrate (or load the cached ceilings), move an earlier results file aside, and sweep."""
    mach, soft = environment.machine(), environment.software()
    fingerprint = environment.fingerprint(mach, soft)
    ceilings: dict = {}
    if opts.calibrate != "skip":
        # only what the cases run on: a GPU suite does not wait for the CPU's GEMMs
        parts = tuple(sorted({ceilings_mod.part_of(p.case.device) for p in cases}))
        ceilings = ceilings_mod.load_or_measure(
            fingerprint, settings.threads, settings.worker_env({}),
            force=opts.calibrate == "force", parts=parts,
            on_measure=lambda missing: print(
                f"kernbench: measuring this machine's ceilings ({', '.join(missing)}; "
                f"under a minute)", file=sys.stderr))
        print(f"kernbench: this machine's ceilings: {ceilings_mod.describe(ceilings)}",
              file=sys.stderr)
    keep_previous(out)  # a fresh run; resuming the old one is `--resume`
    header = build_header(opts, suite, kernels, cases, settings, mach, soft, fingerprint, ceilings)
    return stream(out, header, cases, settings, ceilings, opts.progress, opts.profile)


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard: expected K/N such as 2/4, got {text!r}") from None
    if not (n >= 1 and 1 <= k <= n):
        raise UsageError(f"--shard: K must be in 1..N, got {text!r}")
    return k, n


def resume_run(opts: RunOptions, suite, cases) -> Path:
    """Complete an interrupted run: drop a cut-off last line, skip every case already
    recorded, append the rest with the original header's ceilings and settings."""
    path = Path(opts.resume)
    if opts.output is not None and not same_file(opts.output, path):
        raise UsageError(f"--resume {path} appends to that file; -o {opts.output} names "
                         f"another (drop -o)")
    with warnings.catch_warnings():  # read_run's "dropping a partial line": said below, once
        # the file is accepted and the line is really cut (a refused file keeps it)
        warnings.simplefilter("ignore", KernbenchWarning)
        run = read_run(path)
    if run.header.get("suite") != suite.name:
        raise UsageError(f"--resume {path}: it is a run of suite {run.header.get('suite')!r}, "
                         f"not {suite.name!r}")
    settings = resumed_settings(opts, run.header.get("settings") or {}, path)
    writable_file(path, "--resume")
    cut = cut_partial_line(path)  # only now: a file refused above is left exactly as it was
    if cut:
        warnings.warn(f"{path}: cut a partial last line ({cut} bytes): the run was cut off "
                      f"while writing it, and that case runs again", KernbenchWarning,
                      stacklevel=2)
    done = {c["id"] for c in run.cases}
    todo = [p for p in cases if p.case.id not in done]
    print(f"kernbench: resuming {path}: {len(done)} cases done, {len(todo)} to run",
          file=sys.stderr)
    with settings:
        return stream(path, None, todo, settings, run.header.get("ceilings") or {},
                      opts.progress, opts.profile)


def resumed_settings(opts: RunOptions, recorded: dict, path: Path) -> RunSettings:
    """The settings the interrupted run measured with, which its header states for every
    record in the file: an option left out takes the recorded value, and one that differs is
    refused (records measured with 1 thread under a header saying 2 would mislead every
    reader). Filters may differ: they only choose which cases are still to run."""
    given = {"threads": opts.threads, "isolate": opts.isolate, "allocator": opts.allocator,
             "memory_limit": opts.memory_limit}
    values = {}
    for key, value in given.items():
        if key in recorded and value is not None and value != recorded[key]:
            raise UsageError(f"--resume {path}: the run used {key} {recorded[key]!r}; "
                             f"--{key.replace('_', '-')} {value!r} would mix two settings in "
                             f"one file (leave it out to reuse the run's)")
        values[key] = value if value is not None else recorded.get(key)
    settings = RunSettings(threads=values["threads"] or os.cpu_count() or 1,
                           isolate=values["isolate"] or "group",
                           memory_limit=values["memory_limit"])
    if values["allocator"] is not None:
        settings.allocator = values["allocator"]
    return settings


def build_header(opts, suite, kernels, cases, settings, mach, soft, fingerprint,
                 ceilings) -> dict:
    worker_env = settings.worker_env({})
    header = {
        "type": "run", "schema": SCHEMA, "run_id": uuid.uuid4().hex[:12],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "suite": suite.name,
        "suite_path": suite.path, "description": suite.description,
        "git": environment.git_info(), "machine": mach, "software": soft,
        "fingerprint": fingerprint,
        "settings": {"threads": settings.threads, "isolate": settings.isolate,
                     "allocator": settings.allocator, "memory_limit": settings.memory_limit,
                     "env": environment.relevant_env(worker_env),
                     "filters": {"kernel": list(opts.kernel), "backend": list(opts.backend),
                                 "dtype": list(opts.dtype), "device": list(opts.device),
                                 "mode": list(opts.mode), "case": list(opts.case)}},
        "ceilings": ceilings,
        "kernels": {name: {"path": str(k.folder), "code_hash": k.code_hash()}
                    for name, k in kernels.items()
                    if any(p.case.kernel == name for p in cases)},
        "n_cases": len(cases),
        "shard": opts.shard,
        "gate": suite.gate,  # gate thresholds from the suite (kernbench.compare)
    }
    return header


def stream(out: Path, header: dict | None, cases, settings: RunSettings, ceilings: dict,
           show_progress: bool, profile: bool = False) -> Path:
    """Run the cases, appending each record to `out` as it arrives (after `header`, if given).
    Ctrl-C stops at once; every finished case is already on disk. With `profile`, each measured
    case is profiled before its record is written, which gains a "profile" field."""
    bar = _progress(len(cases), show_progress)
    counts: dict[str, int] = {}
    planned = {p.case.id: p for p in cases}
    with RunWriter(out, header) as writer:
        def emit(record: dict) -> None:
            if profile and record["id"] in planned:
                from .profile import attach_profile

                record = attach_profile(record, planned[record["id"]], settings, out)
            writer.write(record)
            counts[record["status"]] = counts.get(record["status"], 0) + 1
            bar.update(1)

        def progress(p) -> None:
            bar.set_description(p.case.id[:60])

        try:
            run_cases(cases, settings, ceilings, emit, progress)
        except KeyboardInterrupt:
            bar.close()
            print(f"\nkernbench: interrupted; {sum(counts.values())} finished cases are in {out}",
                  file=sys.stderr)
            raise
        finally:
            bar.close()
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"kernbench: {len(cases)} cases ({summary}) -> {out}", file=sys.stderr)
    return out


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled or not sys.stderr.isatty(), unit="case",
                file=sys.stderr, dynamic_ncols=True)
