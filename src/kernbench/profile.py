"""`kernbench profile`: where the time of one case goes, once a benchmark has said it is slow.

A profile is taken in steady state, as the benchmark times it: in a worker subprocess with the
run's environment (threads, allocator, private compiler caches), after the first call (compile)
and a timed warm-up whose median is recorded beside the profile, on the same rotating input
copies. The profiler follows the case's family (see kernbench.profile_worker):

- torch_eager, torch_compile, triton: torch.profiler with shapes and memory, written by
  `tensorboard_trace_handler` (a torch-tb-profiler run, itself a Chrome trace Perfetto opens);
  torch_compile also saves inductor's generated code and its graph/break/recompile counts;
- jax_jit: a jax.profiler trace, the optimised HLO and XLA's cost_analysis();
- numpy, numba: cProfile (deterministic; numba's jitted calls appear under their Python names).

Artifacts go to `<root>/<sanitised case id>/` (root: results/profiles) with a `profile.json`
index: case id, artifact paths (relative to that folder), top operations by self time, the hot
operation, and the steady-state median measured while profiling. This module is the parent side:
it never imports a framework; the report may call `profile_index` and `resolve_profile`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends import family_of
from .case import MODES, Case, CaseSettings
from .discovery import Kernel, discover
from .dtypes import FLOAT_DTYPES
from .errors import EXIT_FAILURE, EXIT_OK, UsageError, unknown
from .paths import writable_folder
from .show import fmt_time
from .suite import (
    DEVICE_NAMES,
    MAX_TIMEOUT_S,
    PlannedCase,
    family_backends,
    is_device_name,
)

__all__ = ["DEFAULT_ROOT", "INDEX_NAME", "ProfileFailed", "ProfileOptions", "case_dir_name",
           "execute_profile", "format_summary", "parse_case_id", "profile_index",
           "profile_planned", "resolve_profile", "select_case"]

DEFAULT_ROOT = Path("results") / "profiles"
INDEX_NAME = "profile.json"
SUMMARY_NAME = "summary.txt"
LOG_NAME = "profile.log"
PROFILE_SCHEMA = 1
#: Operations listed in the terminal summary (profile.json keeps up to 50).
TOP_OPS = 10
#: Longest folder name kept readable; longer ids are cut and made unique with a hash.
MAX_DIR_NAME = 180
#: Kernel launches ncu replays (each is replayed many times for its metrics: keep it small).
NCU_LAUNCHES = 3

_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]")


class ProfileFailed(Exception):
    """The backend raised, crashed or hung while being profiled (not a usage error)."""


# -- where profiles live -------------------------------------------------------------------------
def case_dir_name(case_id: str) -> str:
    """A case id as one folder name (also the tensorboard run name): `/` becomes `__`, `:`
    becomes `-`, anything else outside [A-Za-z0-9._,=+-] becomes `_`; very long ids are cut and
    suffixed with a hash of the full id, so two cases never share a folder."""
    name = _UNSAFE.sub("_", case_id.replace("/", "__").replace(":", "-"))
    if len(name) > MAX_DIR_NAME:
        digest = hashlib.sha1(case_id.encode()).hexdigest()[:12]
        name = f"{name[:MAX_DIR_NAME]}-{digest}"
    return name


def profile_index(case_id_or_dir: str | Path, root: str | Path = DEFAULT_ROOT) -> Path | None:
    """The profile.json of a case, or None if it has not been profiled. Pure file lookup.

    Accepts a case id (looked up under `root`), a profile folder, or a profile.json path."""
    given = Path(case_id_or_dir)
    if given.name == INDEX_NAME and given.is_file():
        return given
    if (given / INDEX_NAME).is_file():
        return given / INDEX_NAME
    return _indexed(str(case_id_or_dir), root)


def _indexed(case_id: str, root: str | Path) -> Path | None:
    path = Path(root) / case_dir_name(case_id) / INDEX_NAME
    return path if path.is_file() else None


def resolve_profile(record: dict, results_path: str | Path,
                    root: str | Path | None = DEFAULT_ROOT) -> Path | None:
    """The profile.json of a case record, if one exists. Pure file lookup, for the report:
    the record's "profile" field (from `run --profile`, relative to the results file's folder),
    else `<results folder>/profiles/<case>/`, else `root` (where `kernbench profile` writes)."""
    base = Path(results_path).parent
    rel = record.get("profile")
    if rel and (base / rel).is_file():
        return base / rel
    if "id" not in record:
        return None
    return _indexed(record["id"], base / "profiles") or (
        _indexed(record["id"], root) if root is not None else None)


def read_index(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a readable profile index: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "profile":
        raise UsageError(f"{path}: not a kernbench profile index")
    return data


# -- choosing the case ---------------------------------------------------------------------------
def parse_params(text: str, kernel: Kernel, where: str) -> dict[str, Any]:
    """`rows=64,cols=128` -> typed values (by the spec's defaults), resolved and checked."""
    spec = kernel.spec
    given: dict[str, Any] = {}
    for item in (t for t in text.split(",") if t.strip()):
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise UsageError(f"{where}: {item!r}: expected key=value")
        if key not in spec.defaults:
            raise unknown(f"{kernel.name} parameter", key, spec.defaults, where)
        given[key] = _typed(raw, spec.defaults[key], f"{where}: {key}")
    return spec.resolve(given, where)


def _typed(raw: str, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if raw.lower() not in ("true", "false"):
            raise UsageError(f"{where}={raw!r}: expected true or false")
        return raw.lower() == "true"
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise UsageError(f"{where}={raw!r}: expected {type(default).__name__}") from None
    return raw


def _check_device(device: str, where: str) -> None:
    if not is_device_name(device):
        raise unknown("device", device, DEVICE_NAMES, where)


def build_case(kernels: dict[str, Kernel], kernel: str, label: str, device: str, dtype: str,
               mode: str, params: str, settings: CaseSettings, where: str) -> PlannedCase:
    """Check every field of a case against what discovery found; unknown names are UsageErrors
    listing the allowed values."""
    if kernel not in kernels:
        raise unknown("kernel", kernel, kernels, where)
    k = kernels[kernel]
    backend, _, variant = label.partition(":")
    try:
        family_of(backend)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    # the labels `kernbench run` plans (kernbench.suite._expand): an implementation's `family`
    # is its file's source (`numpy` also serves cupy, `numbacuda` serves numba_cuda), not the
    # backend's family name
    labels = {impl.label(b): impl for impl in k.implementations
              for b in family_backends(impl.family)}
    impl = labels.get(f"{backend}:{variant}" if variant else backend)
    if impl is None:
        raise unknown(f"{kernel} backend", label, labels, where)
    if dtype not in FLOAT_DTYPES:
        raise unknown("dtype", dtype, FLOAT_DTYPES, where)
    _check_device(device, where)
    if mode not in MODES:
        raise unknown("mode", mode, MODES, where)
    resolved = parse_params(params, k, where)
    case = Case(kernel, backend, variant, device, dtype, mode, tuple(resolved.items()))
    return PlannedCase(case, settings, k, impl)


def parse_case_id(case_id: str, kernels: dict[str, Kernel],
                  settings: CaseSettings | None = None) -> PlannedCase:
    """`softmax/torch_eager/cpu/float32/forward/rows=64,cols=128` -> the planned case."""
    parts = case_id.strip().split("/", 5)
    if len(parts) != 6:
        raise UsageError(f"case id {case_id!r}: expected "
                         f"kernel/backend[:variant]/device/dtype/mode/k=v,...")
    kernel, label, device, dtype, mode, params = parts
    return build_case(kernels, kernel, label, device, dtype, mode, params,
                      settings or CaseSettings(), f"case id {case_id!r}")


@dataclass
class ProfileOptions:
    """What `kernbench profile` was asked for: a case id, or the case's fields."""

    case_id: str | None = None
    kernel: str | None = None
    backend: str | None = None
    dtype: str = "float32"
    device: str = "cpu"
    mode: str = "forward"
    params: str = ""
    kernels_dirs: tuple[str, ...] = ()
    root: str = str(DEFAULT_ROOT)
    calls: int | None = None  # None: enough calls for ~0.25 s, 5 to 100
    threads: int | None = None
    top: int = TOP_OPS
    timeout_s: float | None = None
    ncu: bool | None = None  # None: when the device is CUDA and ncu is installed
    budget_s: float = 1.0  # time for the steady-state median measured before profiling


def select_case(opts: ProfileOptions, kernels: dict[str, Kernel]) -> PlannedCase:
    settings = CaseSettings(budget_s=opts.budget_s)
    fields_given = opts.kernel is not None or opts.backend is not None or opts.params
    if opts.case_id:
        if fields_given:
            raise UsageError("profile: give either a CASE_ID or --kernel/--backend/--params, "
                             "not both")
        return parse_case_id(opts.case_id, kernels, settings)
    if not opts.kernel or not opts.backend:
        raise UsageError("profile: give a CASE_ID (see `kernbench show`), or --kernel and "
                         "--backend (with --dtype/--device/--params k=v,...)")
    return build_case(kernels, opts.kernel, opts.backend, opts.device, opts.dtype, opts.mode,
                      opts.params, settings, "profile")


# -- running the profiling worker ----------------------------------------------------------------
def profile_planned(planned: PlannedCase, run_settings: Any, root: str | Path, *,
                    calls: int | None = None, ncu: bool | None = False,
                    timeout_s: float | None = None) -> Path:
    """Profile one case in a `python -m kernbench.profile_worker` subprocess started with the
    run's worker environment (`run_settings` is a kernbench.runner.RunSettings). Returns the
    path of its profile.json; raises ProfileFailed if the backend raised, crashed or hung."""
    case = planned.case
    out = Path(root) / case_dir_name(case.id)
    if out.exists():  # a fresh profile: stale traces would show up as extra tensorboard spans
        shutil.rmtree(out)
    out.mkdir(parents=True)
    family = family_of(case.backend)
    env = run_settings.worker_env(family.worker_env(case.device))
    message = {"case": case.to_dict(), "settings": planned.settings.to_dict(),
               "folder": str(planned.kernel.folder), "impl": str(planned.impl.path),
               "out": str(out.resolve()), "calls": calls}
    timeout = timeout_s or planned.settings.timeout_s
    _run_worker([sys.executable, "-m", "kernbench.profile_worker"], message, env,
                out / LOG_NAME, timeout, case.id)
    index_path = out / INDEX_NAME
    if not index_path.is_file():
        raise ProfileFailed(f"{case.id}: the profiling worker wrote no {INDEX_NAME}; "
                            f"see {out / LOG_NAME}")
    index = read_index(index_path)
    want_ncu = ncu if ncu is not None else (case.device.startswith("cuda")
                                            and shutil.which("ncu") is not None)
    if want_ncu:
        index.setdefault("notes", []).append(
            _ncu(message, env, out, timeout, case, family.name))
    index_path.write_text(json.dumps(index, indent=1, allow_nan=False) + "\n")
    (out / SUMMARY_NAME).write_text(format_summary(index, out, top=TOP_OPS) + "\n")
    return index_path


def _run_worker(argv: list[str], message: dict, env: dict, log: Path, timeout: float,
                case_id: str) -> None:
    with open(log, "ab") as logf:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=logf,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            proc.communicate((json.dumps(message) + "\n").encode(), timeout=timeout)
        except (subprocess.TimeoutExpired, KeyboardInterrupt) as exc:
            # its own session: nothing else kills it (ncu's child included, kernbench.lifetime)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise ProfileFailed(f"{case_id}: profiling exceeded {timeout:g} s; "
                                f"see {log}") from None
    if proc.returncode != 0:
        cause = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                 else f"exit code {proc.returncode}")
        raise ProfileFailed(f"{case_id}: profiling failed ({cause}): {_tail(log)}")


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    text = [t for t in text if t.strip()]
    return " | ".join(text[-lines:])[-1500:]


def _ncu(message: dict, env: dict, out: Path, timeout: float, case: Case,
         family: str) -> str:
    """Nsight Compute on a few kernel launches of the case, between cudaProfilerStart/Stop
    (`--profile-from-start off`), so compilation and warm-up are not replayed. Returns a note
    for the index; an ncu failure is a note, not a failed profile."""
    ncu = shutil.which("ncu")
    if ncu is None:
        return "ncu: not installed"
    if family not in ("torch", "triton"):
        return f"ncu: not run for the {family} family (no cudaProfilerStart hook here)"
    report = out / "ncu"
    argv = [ncu, "--profile-from-start", "off", "--target-processes", "all",
            "--force-overwrite", "--export", str(report),
            sys.executable, "-m", "kernbench.profile_worker"]
    try:
        _run_worker(argv, {**message, "mode": "ncu", "calls": NCU_LAUNCHES}, env,
                    out / "ncu.log", timeout, case.id)
        text = subprocess.run([ncu, "--import", f"{report}.ncu-rep", "--print-summary",
                               "per-kernel"], capture_output=True, text=True, timeout=120,
                              check=True).stdout
        (out / "ncu.txt").write_text(text)
    except (ProfileFailed, subprocess.SubprocessError, OSError) as exc:
        return f"ncu failed: {exc}"[:500]
    return f"ncu: report {report.name}.ncu-rep, per-kernel summary ncu.txt"


# -- the summary ---------------------------------------------------------------------------------
ARTIFACT_LABELS = {
    "tensorboard_run": "tensorboard run",
    "chrome_trace": "chrome trace (Perfetto)",
    "perfetto_trace": "perfetto trace",
    "xplane": "xplane (tensorboard-plugin-profile)",
    "op_tables": "operator tables",
    "inductor_code": "inductor code",
    "inductor_debug": "inductor debug",
    "compile_counters": "compile counters",
    "hlo": "optimised HLO",
    "stablehlo": "StableHLO",
    "cost_analysis": "cost analysis",
    "cprofile": "cProfile stats",
    "cprofile_text": "cProfile text",
    "numba_code": "numba code",
    "log": "worker log",
}


def format_summary(index: dict, folder: str | Path, top: int = TOP_OPS) -> str:
    """The terminal summary of a profile: the hot operation against the median, the top
    operations by self time, compiler facts, and the path of every artifact. Per-call figures
    are medians over the profiled calls where the profiler tells calls apart (else means)."""
    folder = Path(folder)
    n = index.get("calls") or 1
    median = index.get("median_s")
    fastest = (index.get("time") or {}).get("min_s")
    lines = [f"profile of {index['id']}",
             f"  {index.get('profiler', '?')}: {n} calls in steady state, "
             f"{index.get('threads', '?')} thread(s); benchmark measured here: median "
             f"{fmt_time(median)}/call, fastest {fmt_time(fastest)}; "
             f"first call {fmt_time(index.get('compile_s'))}"]
    if index.get("profiled_per_call_median_s") is not None:
        lines.append(f"  a call under the profiler: {fmt_time(index['profiled_per_call_median_s'])}"
                     f" (median), {fmt_time(index.get('profiled_per_call_s'))} (mean)")
    hot = index.get("hot_op")
    if hot:
        frac = hot.get("fraction_of_median")
        share = f" = {100 * frac:.0f}% of the benchmark median" if frac is not None else ""
        lines.append(f"  hot op: {hot['name']}, {fmt_time(_typical(hot))}/call{share}")
    for title, key in (("top operations by self time", "top_ops"),
                       ("CUDA kernels by device time", "cuda_kernels"),
                       ("torch operations by self time", "torch_top_ops")):
        ops = index.get(key) or []
        if not ops:
            continue
        lines.append(f"  {title}:")
        lines.append(f"    {'self/call':>10}  {'share':>6}  {'calls/call':>10}  name")
        for op in ops[:top]:
            lines.append(f"    {fmt_time(_typical(op)):>10}  {_pct(op.get('share')):>6}  "
                         f"{op['calls'] / n:>10.3g}  {op['name'][:90]}")
    kernel_lines = index.get("top_lines") or []
    if kernel_lines:
        lines.append("  source lines of the kernel file (time including what they call):")
        for row in kernel_lines[:top]:
            lines.append(f"    {fmt_time(row['per_call_s']):>10}  {_pct(row.get('share')):>6}  "
                         f"{row['line']:<22} {row['code'][:70]}")
    comp = index.get("compile")
    if comp:
        lines.append(f"  torch.compile: {comp.get('graphs', 0)} graph(s), "
                     f"{comp.get('graph_breaks', 0)} graph break(s), "
                     f"{comp.get('recompiles', 0)} recompile(s); "
                     f"{comp.get('steady_state_new_graphs', 0)} new in steady state")
        for reason, count in (comp.get("graph_break_reasons") or {}).items():
            lines.append(f"    break x{count}: {reason[:120]}")
    cost = index.get("cost")
    if cost:
        lines.append("  XLA cost analysis: " + ", ".join(
            f"{k} {_num(v)}" for k, v in cost.items() if v is not None))
    for note in index.get("notes") or []:
        lines.append(f"  note: {note}")
    lines.append(f"  artifacts in {folder}:")
    for key, rel in (index.get("artifacts") or {}).items():
        paths = rel if isinstance(rel, list) else [rel]
        label = ARTIFACT_LABELS.get(key, key)
        for i, p in enumerate(paths):
            lines.append(f"    {label if i == 0 else '':<24} {folder / p}")
    if "tensorboard_run" in (index.get("artifacts") or {}):
        lines.append(f"  view: tensorboard --logdir {folder.parent}  "
                     f"(PyTorch Profiler tab, run {folder.name})")
    return "\n".join(lines)


def _typical(op: dict) -> float | None:
    median = op.get("self_per_call_median_s")
    return op.get("self_per_call_s") if median is None else median


def _pct(share: float | None) -> str:
    return f"{100 * share:5.1f}%" if share is not None else "-"


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# -- the command ---------------------------------------------------------------------------------
def execute_profile(opts: ProfileOptions) -> int:
    """`kernbench profile`: select, profile, print the summary. Exit code 0, or 1 if the backend
    failed while being profiled; bad input raises UsageError (exit code 2)."""
    from .runner import RunSettings

    if opts.calls is not None and opts.calls < 1:
        raise UsageError(f"--calls: must be at least 1, got {opts.calls}")
    if opts.threads is not None and opts.threads < 1:
        raise UsageError(f"--threads: must be at least 1, got {opts.threads}")
    if opts.timeout_s is not None and opts.timeout_s > MAX_TIMEOUT_S:
        raise UsageError(f"--timeout: must be at most {MAX_TIMEOUT_S:g} s, got {opts.timeout_s:g}")
    kernels = discover(list(opts.kernels_dirs))
    planned = select_case(opts, kernels)
    writable_folder(opts.root, "-o")
    case = planned.case
    family = family_of(case.backend)
    # (a CUDA device is checked in the worker: asking here would import the framework)
    reason = family.missing() or (family.unsupported(case.backend, case.device, case.dtype)
                                  if case.device == "cpu" else None)
    if reason:
        print(f"kernbench: cannot profile {case.id} here: {reason}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"kernbench: profiling {case.id}", file=sys.stderr)
    try:
        with RunSettings(threads=opts.threads or os.cpu_count() or 1) as settings:
            path = profile_planned(planned, settings, opts.root, calls=opts.calls, ncu=opts.ncu,
                                   timeout_s=opts.timeout_s)
    except ProfileFailed as exc:
        print(f"kernbench: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(format_summary(read_index(path), path.parent, top=opts.top))
    return EXIT_OK


def attach_profile(record: dict, planned: PlannedCase, run_settings: Any,
                   results_path: str | Path) -> dict:
    """For `kernbench run --profile`: profile a measured case into `<results folder>/profiles`
    and add "profile" (its profile.json, relative to the results file's folder) to the record,
    or "profile_error" if profiling failed. Cases that were not measured are left alone."""
    if not record.get("time"):
        return record
    base = Path(results_path).parent
    try:
        path = profile_planned(planned, run_settings, base / "profiles")
    except ProfileFailed as exc:
        print(f"kernbench: {exc}", file=sys.stderr)
        return {**record, "profile_error": str(exc)[:2000]}
    return {**record, "profile": os.path.relpath(path, base)}
