"""`kernbench ab`: the same suite on the base revision's kernels and the working tree's, in one
job, interleaved, then gated on the paired ratios. The mode to use in CI on shared machines.

Two runs on different jobs (a stored baseline) differ by more than the code: another host,
another tenant, a warmer or cooler machine. That drift is invisible to within-run samples and is
the main source of false alarms. Here base (A) and head (B) of every case run in the same
worker process, alternating A B / B A in blocks of equal length (kernbench.ab_worker), so the
drift cancels in each pair's ratio.

The base kernels come from `git archive REV kernels/` extracted into a temporary folder: it reads
the repository without touching its state (no worktree to register or clean up, nothing left
behind if the job is killed). Only kernels/ is taken from the base: both sides run under the
working tree's harness and suite, so the comparison is of the kernels' code alone.
`--base-kernels DIR` compares against any folder of kernels instead.

Output: a folder with base.jsonl and head.jsonl (ordinary results files, plus an "ab" header key
and a "pair" entry in each case's time), which `kernbench gate` and the report read like any
other pair of runs.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from . import environment, metrics
from .backends import family_of
from .case import Case, CaseSettings
from .discovery import Kernel, default_dirs, kernel_dirs, load_kernel
from .errors import UsageError
from .paths import keep_previous, writable_folder
from .results import SCHEMA, RunWriter
from .runner import RunSettings, WorkerProcess, failure_record, group_key, memory_check, order_cases
from .suite import PlannedCase, Suite, filter_cases, load_suite
from .timing import Measurement


@dataclass
class ABOptions:
    suite: str
    base: str | None = None  # a git revision whose kernels/ is the base
    base_kernels: str | None = None  # or a folder of kernels
    output: str | None = None  # folder for base.jsonl and head.jsonl
    kernels_dirs: tuple[str, ...] = ()
    kernel: tuple[str, ...] = ()
    backend: tuple[str, ...] = ()
    dtype: tuple[str, ...] = ()
    device: tuple[str, ...] = ()
    threads: int | None = None
    allocator: str | None = None
    progress: bool = True


class ABWorkerProcess(WorkerProcess):
    """A worker speaking the A/B protocol (`python -m kernbench.ab_worker`)."""

    module = "kernbench.ab_worker"


def extract_base(rev: str, into: Path, repo: str | Path = ".") -> Path:
    """`git archive REV kernels` extracted under `into`; returns the kernels folder."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=repo,
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"--base {rev}: git is not available: {exc}") from None
    if top.returncode != 0:
        raise UsageError(f"--base {rev}: not inside a git repository")
    root = top.stdout.strip()
    out = subprocess.run(["git", "archive", "--format=tar", rev, "kernels"], cwd=root,
                         capture_output=True, timeout=120)
    if out.returncode != 0:
        msg = out.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(f"--base {rev}: git archive failed: {msg[-1] if msg else 'unknown'}")
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        try:
            tar.extractall(into, filter="data")
        except TypeError:  # Python without extraction filters; git's own archive is trusted
            tar.extractall(into)
    folder = into / "kernels"
    if not folder.is_dir():
        raise UsageError(f"--base {rev}: that revision has no kernels/ folder")
    return folder


def resolve_rev(rev: str) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def discover_in(roots: list[Path]) -> dict[str, Kernel]:
    """Kernels under `roots` (a later root's algorithm of the same name wins)."""
    found: dict[str, Kernel] = {}
    for root in roots:
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if folder.name.startswith((".", "_")) or not (folder / "spec.py").exists():
                continue
            found[folder.name] = load_kernel(folder)
    return found


def base_twin(p: PlannedCase, base: dict[str, Kernel]) -> PlannedCase | None:
    """The same case on the base kernels: same kernel name, family and variant."""
    kernel = base.get(p.case.kernel)
    if kernel is None:
        return None
    for impl in kernel.implementations:
        if impl.family == p.impl.family and impl.variant == p.impl.variant:
            return PlannedCase(p.case, p.settings, kernel, impl)
    return None


def record_settings(case: Case, settings: CaseSettings) -> CaseSettings:
    """Settings for the per-side record (status, accuracy, memory, compile): in forward mode its
    own timing is cut to one sample, since the timing that counts is the interleaved one. The
    backward modes are not interleaved (yet): each side is timed in full, one after the other in
    the same worker, and gated as two runs of the same job."""
    if case.mode != "forward":
        return settings
    return replace(settings, budget_s=0.0, min_samples=1, max_samples=1, warmup_s=0.0)


def execute_ab(opts: ABOptions) -> tuple[Path, Path]:
    """Run the A/B sweep; returns the paths of base.jsonl and head.jsonl."""
    if bool(opts.base) == bool(opts.base_kernels):
        raise UsageError("kernbench ab: give exactly one of --base REV or --base-kernels DIR")
    head_roots = kernel_dirs(list(opts.kernels_dirs))
    # folders from KERNBENCH_KERNELS and --kernels are the same code on both sides
    extra = head_roots[len(default_dirs()):]
    with tempfile.TemporaryDirectory(prefix="kernbench-base-") as tmp:
        if opts.base:
            base_root = extract_base(opts.base, Path(tmp))
            base_label = opts.base
        else:
            base_root = Path(opts.base_kernels).expanduser().resolve()
            if not base_root.is_dir():
                raise UsageError(f"--base-kernels {opts.base_kernels}: no such directory")
            base_label = str(base_root)
        return ab_between(opts, [base_root, *extra], head_roots, base_label)


def ab_between(opts: ABOptions, base_roots: list[Path], head_roots: list[Path],
               base_label: str) -> tuple[Path, Path]:
    """The A/B sweep of `opts.suite` between the kernels found under `base_roots` and under
    `head_roots` (later roots win); `opts.base`/`base_kernels` only label the base here."""
    head_kernels = discover_in(head_roots)
    base_kernels = discover_in(base_roots)
    suite = load_suite(opts.suite, head_kernels)
    cases = filter_cases(suite.cases, kernels=opts.kernel, backends=opts.backend,
                         dtypes=opts.dtype, devices=opts.device, known_kernels=head_kernels)
    if not cases:
        raise UsageError(f"{opts.suite}: no case matches the filters")
    threads = opts.threads or suite.threads or os.cpu_count() or 1
    settings = RunSettings(threads=threads, isolate="group")
    if opts.allocator is not None:
        settings.allocator = opts.allocator
    with settings:
        return _run(opts, suite, cases, settings, head_kernels, base_kernels, base_label)


def result_files(out: Path) -> tuple[Path, Path]:
    """The base and head results files an A/B run writes into its folder `out`."""
    return out / "base.jsonl", out / "head.jsonl"


def _run(opts: ABOptions, suite: Suite, cases: list[PlannedCase], settings: RunSettings,
         head_kernels: dict[str, Kernel], base_kernels: dict[str, Kernel],
         base_label: str) -> tuple[Path, Path]:
    ab_id = uuid.uuid4().hex[:12]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(opts.output) if opts.output else Path("results") / f"ab-{suite.name}-{stamp}"
    writable_folder(out, "-o")
    mach, soft = environment.machine(), environment.software()
    common = {
        "type": "run", "schema": SCHEMA, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "suite": suite.name, "suite_path": suite.path, "description": suite.description,
        "machine": mach, "software": soft,
        "fingerprint": environment.fingerprint(mach, soft),
        "settings": {"threads": settings.threads, "isolate": "group",
                     "allocator": settings.allocator,
                     "env": environment.relevant_env(settings.worker_env({})),
                     "filters": {"kernel": list(opts.kernel), "backend": list(opts.backend),
                                 "dtype": list(opts.dtype), "device": list(opts.device)}},
        "ceilings": {}, "n_cases": len(cases), "gate": suite.gate,
    }
    names = {p.case.kernel for p in cases}
    head_git = environment.git_info()
    base_git = {"commit": resolve_rev(opts.base), "rev": opts.base} if opts.base else {
        "commit": None, "folder": base_label}
    headers = {}
    for side, kernels, git in (("base", base_kernels, base_git), ("head", head_kernels, head_git)):
        headers[side] = {**common, "run_id": uuid.uuid4().hex[:12], "git": git,
                         "kernels": {n: {"path": str(k.folder), "code_hash": k.code_hash()}
                                     for n, k in kernels.items() if n in names},
                         "ab": {"id": ab_id, "side": side, "base": base_label,
                                "order": "alternating AB/BA blocks"}}
    paths = result_files(out)
    for path in paths:  # an earlier A/B run into the same folder is kept, not deleted
        keep_previous(path)
    worker: ABWorkerProcess | None = None
    worker_key = None
    ordered = order_cases(cases)
    with RunWriter(paths[0], headers["base"]) as wb, RunWriter(paths[1], headers["head"]) as wh:
        try:
            for i, p in enumerate(ordered, 1):
                if opts.progress:
                    print(f"kernbench ab: [{i}/{len(ordered)}] {p.case.id}", file=sys.stderr)
                twin = base_twin(p, base_kernels)
                family = family_of(p.case.backend)
                skip = family.missing() or memory_check(p, settings)
                if skip:
                    for writer, q in ((wb, twin), (wh, p)):
                        if q is not None:
                            writer.write(metrics.derive(failure_record(q, "skipped", skip),
                                                        q.kernel.spec, {}))
                    continue
                key = group_key(p.case)
                if worker is None or key != worker_key:
                    if worker is not None:
                        worker.close()
                    worker = ABWorkerProcess(settings.worker_env(family.worker_env(p.case.device)))
                    worker_key = key
                records, worker = _case(worker, settings, twin, p, ab_id)
                for writer, record in zip((wb, wh), records):
                    if record is not None:
                        writer.write(record)
        except KeyboardInterrupt:  # stop at once; every finished case is on disk
            if worker is not None:
                worker.kill()
            raise
        finally:
            if worker is not None:
                worker.close()
    return paths


def _case(worker: ABWorkerProcess, settings: RunSettings, base: PlannedCase | None,
          head: PlannedCase, ab_id: str) -> tuple[list[dict | None], ABWorkerProcess]:
    """Both sides' records (status, accuracy, memory), then the interleaved timing."""
    env_key = settings.worker_env(family_of(head.case.backend).worker_env(head.case.device))
    records: list[dict | None] = []
    for q in (base, head):
        if q is None:
            records.append(None)
            continue
        message = {"op": "execute", "case": q.case.to_dict(),
                   "settings": record_settings(q.case, q.settings).to_dict(),
                   "folder": str(q.kernel.folder), "impl": str(q.impl.path)}
        outcome, result = worker.run(message, q.settings.timeout_s)
        if outcome == "ok":
            record = result
        else:
            record = failure_record(q, outcome, str(result))
            worker.close()
            worker = ABWorkerProcess(env_key)
        records.append(record)
    rb, rh = records
    if (rb is not None and rh is not None and rb["status"] == "ok" and rh["status"] == "ok"
            and head.case.mode == "forward"):
        message = {"op": "pair", "case": head.case.to_dict(), "settings": head.settings.to_dict(),
                   "a": {"folder": str(base.kernel.folder), "impl": str(base.impl.path)},
                   "b": {"folder": str(head.kernel.folder), "impl": str(head.impl.path)}}
        outcome, result = worker.run(message, 2 * head.settings.timeout_s)
        if outcome == "ok" and "error" not in result:
            n = int(result["per_sample_calls"])
            for side, rec, samples in (("base", rb, result["a"]), ("head", rh, result["b"])):
                rec["time"] = {**Measurement(tuple(samples), n).to_dict(),
                               "pair": {"ab_id": ab_id, "side": side}}
        else:
            detail = result.get("error") if outcome == "ok" else f"{outcome}: {result}"
            for rec in (rb, rh):
                rec["ab_error"] = f"interleaved timing failed: {detail}"
            if outcome != "ok":
                worker.close()
                worker = ABWorkerProcess(env_key)
    out = []
    for q, rec in zip((base, head), records):
        out.append(None if rec is None else metrics.derive(rec, q.kernel.spec, {}))
    return out, worker
