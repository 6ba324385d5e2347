"""The profiling worker: `python -m kernbench.profile_worker` reads one JSON message on stdin,
profiles that case in steady state and writes its artifacts and profile.json into the message's
folder. Started by kernbench.profile with the run's worker environment; frameworks are imported
here only, as in kernbench.worker.

Steady state means what the benchmark times: `Worker.prepare` draws the inputs and makes the
first call (compilation), then the benchmark's own timed loop (`Worker._time`: the same input
copies, and on a GPU the same CUDA events, L2 flush and clock warm-up) measures the median
(recorded in the index, so the profile can be compared with the benchmark), then the profiler
records `calls` more calls on the same copies. One profiler per family:

- torch (torch_eager, torch_compile), triton and numba_cuda: torch.profiler with shapes and
  memory through `tensorboard_trace_handler`; for torch_compile, inductor's debug trace and
  generated code and Dynamo's counters; C++ kernels are compiled with
  `cpp.enable_kernel_profile` so each fused kernel appears as its own operation. Triton under
  the CPU interpreter (and numba_cuda in the CUDA simulator) is profiled by cProfile first (its
  time is Python's), torch.profiler second.
- jax: jax.profiler trace (XLA's per-HLO-op events give the op breakdown), the optimised HLO and
  StableHLO text, `cost_analysis()`.
- numpy, numba: cProfile, plus a line-level pass over the kernel's file (cProfile charges a ufunc
  call or an array operator to the calling function); numba's dispatcher reports each jitted call
  under its Python name, and the assembly and parallel diagnostics of the module's jitted
  functions are saved.

Each profiler tells the profiled calls apart (profiler steps, trace annotations, per-call
snapshots), so per-call figures are medians that one preempted call cannot skew.
"""

from __future__ import annotations

import bisect
import contextlib
import cProfile
import gzip
import io
import json
import linecache
import math
import os
import pstats
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .backends import family_of
from .case import Case, CaseSettings
from .dtypes import get_format
from .profile import INDEX_NAME, LOG_NAME, PROFILE_SCHEMA
from .worker import PreparedCase, Worker, jsonable

#: Profile enough calls to fill this long (calls are clamped to MIN_CALLS..MAX_CALLS).
PROFILE_TARGET_S = 0.25
MIN_CALLS, MAX_CALLS = 5, 100
#: Operations kept in profile.json.
KEEP_OPS = 50
TB_WORKER = "kernbench"
STEP_NAME = "kernbench_call"
#: Frames from here are the harness's, not the kernel's: left out of Python profiles.
HARNESS_DIR = str(Path(__file__).resolve().parent) + os.sep


def auto_calls(median_s: float) -> int:
    if not median_s or not math.isfinite(median_s) or median_s <= 0:
        return MIN_CALLS
    return int(min(MAX_CALLS, max(MIN_CALLS, math.ceil(PROFILE_TARGET_S / median_s))))


def op_row(name: str, calls: int, self_s: float, total_s: float | None, n: int,
           grand_self_s: float, per_call: list[float] | None = None, **extra: Any) -> dict:
    """One operation of a profile: totals over the profiled calls, and per call of the case.

    `self_per_call_s` is the mean (total / calls of the case); `self_per_call_median_s`, when
    the profiler tells calls apart (`per_call`: this op's self time in each call), is the median,
    which a preempted call cannot skew: compare that one with the benchmark's median."""
    median = statistics.median(per_call) if per_call else None
    return {"name": name, "calls": calls, "self_s": self_s, "self_per_call_s": self_s / n,
            "self_per_call_median_s": median, "total_s": total_s,
            "share": (self_s / grand_self_s) if grand_self_s > 0 else None, **extra}


def split_by_call(items: list[tuple[str, float, float]], windows: list[tuple[float, float]]
                  ) -> dict[str, list[float]]:
    """(name, start, self time) items -> each name's self time in each call window (sorted,
    non-overlapping (start, end) pairs); items outside every window are left out."""
    starts = [w[0] for w in windows]
    per_call: dict[str, list[float]] = {}
    for name, start, value in items:
        k = bisect.bisect_right(starts, start) - 1
        if 0 <= k < len(windows) and start <= windows[k][1]:
            per_call.setdefault(name, [0.0] * len(windows))[k] += value
    return per_call


def run_calls(p: PreparedCase, argsets: list[tuple], n: int,
              after_each: Callable[[], None] = lambda: None) -> None:
    for i in range(n):
        p.call(*argsets[i % len(argsets)])
        p.sync()
        after_each()


# -- torch.profiler ------------------------------------------------------------------------------
class TorchProfiler:
    name = "torch.profiler"

    def __init__(self, key: str = "top_ops") -> None:
        self.key = key  # "torch_top_ops" when another profiler is the primary one
        self.first_counters: dict = {}

    def before_prepare(self, case: Case, out: Path) -> None:
        if case.backend != "torch_compile":
            return
        import torch._dynamo.config as dynamo_config
        import torch._inductor.config as inductor_config

        # The debug trace (FX graphs, IR, output code) of every graph compiled from here on.
        inductor_config.trace.enabled = True
        dynamo_config.debug_dir_root = str(out / "inductor_debug")
        # Each generated C++ kernel is wrapped in RECORD_FUNCTION: it becomes an operation of
        # its own in the profile instead of time hidden in "Torch-Compiled Region".
        inductor_config.cpp.enable_kernel_profile = True

    def after_prepare(self, p: PreparedCase) -> None:
        """Dynamo's counters after the first call: later growth is recompilation."""
        self.first_counters = p.family.compile_info(p.case.backend) or {}

    def profile(self, p: PreparedCase, argsets: list[tuple], n: int, out: Path) -> dict:
        import torch
        from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

        cuda = p.case.device.startswith("cuda")
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities, record_shapes=True, profile_memory=True,
                     schedule=schedule(wait=0, warmup=1, active=n, repeat=1),
                     on_trace_ready=tensorboard_trace_handler(str(out), worker_name=TB_WORKER)
                     ) as prof:
            run_calls(p, argsets, n + 1, prof.step)  # one profiler warm-up step, n recorded
        avgs = prof.key_averages()
        sort_key = "self_device_time_total" if cuda else "self_cpu_time_total"
        tables = [f"# torch.profiler, {n} calls of {p.case.id}",
                  "# operators by self time", avgs.table(sort_by=sort_key, row_limit=40),
                  "# by input shape",
                  prof.key_averages(group_by_input_shape=True).table(sort_by=sort_key,
                                                                     row_limit=40)]
        (out / "ops.txt").write_text("\n".join(tables) + "\n")

        cpu = torch.autograd.DeviceType.CPU
        cpu_rows = [e for e in avgs if not str(e.key).startswith("ProfilerStep")
                    and e.device_type == cpu]
        dev_rows = [e for e in avgs if e.device_type != cpu]
        # each recorded call is one profiler step (a ProfilerStep event): it tells calls apart
        events = prof.events()
        windows = sorted((e.time_range.start, e.time_range.end) for e in events
                         if e.name.startswith("ProfilerStep"))
        per_call = split_by_call(
            [(str(e.key), e.time_range.start,
              (e.self_cpu_time_total if e.device_type == cpu else e.self_device_time_total)
              * 1e-6)
             for e in events if not e.name.startswith("ProfilerStep")], windows)
        grand = sum(e.self_cpu_time_total for e in cpu_rows) * 1e-6
        top = [op_row(str(e.key), e.count, e.self_cpu_time_total * 1e-6,
                      e.cpu_time_total * 1e-6, n, grand, per_call.get(str(e.key)),
                      self_cpu_memory_bytes=int(e.self_cpu_memory_usage))
               for e in sorted(cpu_rows, key=lambda e: -e.self_cpu_time_total)]
        result: dict[str, Any] = {self.key: top[:KEEP_OPS]}
        if windows:
            spans = [(end - start) * 1e-6 for start, end in windows]
            result["profiled_per_call_s"] = sum(spans) / len(spans)
            result["profiled_per_call_median_s"] = statistics.median(spans)
        if dev_rows:
            grand_dev = sum(e.self_device_time_total for e in dev_rows) * 1e-6
            result["cuda_kernels"] = [
                op_row(str(e.key), e.count, e.self_device_time_total * 1e-6, None, n, grand_dev,
                       per_call.get(str(e.key)))
                for e in sorted(dev_rows, key=lambda e: -e.self_device_time_total)][:KEEP_OPS]
        traces = sorted(out.glob(f"{TB_WORKER}.*.pt.trace.json"))
        artifacts: dict[str, Any] = {"tensorboard_run": ".", "op_tables": "ops.txt"}
        if traces:
            artifacts["chrome_trace"] = traces[-1].name
        if p.case.backend == "torch_compile":
            artifacts.update(self._inductor_artifacts(out))
            result["compile"] = self._counters(p, self.first_counters)
            (out / "compile.json").write_text(json.dumps(result["compile"], indent=1) + "\n")
            artifacts["compile_counters"] = "compile.json"
        result["artifacts"] = artifacts
        return result

    @staticmethod
    def _inductor_artifacts(out: Path) -> dict[str, Any]:
        """The generated code of every graph this process loaded (from inductor's code cache,
        so it is there even when the FX graph cache skipped codegen), and the debug trace."""
        from torch._inductor.codecache import PyCodeCache

        code_dir = out / "inductor"
        code_dir.mkdir(exist_ok=True)
        files = []
        for i, module in enumerate(list(getattr(PyCodeCache, "modules", []))):
            src = getattr(module, "__file__", None)
            if src and os.path.isfile(src):
                dest = code_dir / f"output_code_{i}.py"
                dest.write_text(Path(src).read_text())
                files.append(str(dest.relative_to(out)))
        found: dict[str, Any] = {}
        if files:
            found["inductor_code"] = files
        debug = out / "inductor_debug"
        if debug.is_dir():
            found["inductor_debug"] = [str(d.relative_to(out))
                                       for d in sorted(debug.glob("*/torchinductor/*"))
                                       if d.is_dir()] or "inductor_debug"
        return found

    @staticmethod
    def _counters(p: PreparedCase, first: dict) -> dict:
        from torch._dynamo.utils import counters

        info = p.family.compile_info(p.case.backend) or {}
        return {**info,
                "steady_state_new_graphs": (info.get("graphs", 0) + info.get("recompiles", 0)
                                            - first.get("graphs", 0)
                                            - first.get("recompiles", 0)),
                "graph_break_reasons": {str(k): int(v)
                                        for k, v in counters["graph_break"].items()}}


# -- jax.profiler --------------------------------------------------------------------------------
class JaxProfiler:
    name = "jax.profiler"

    def before_prepare(self, case: Case, out: Path) -> None:
        pass

    def after_prepare(self, p: PreparedCase) -> None:
        pass

    def profile(self, p: PreparedCase, argsets: list[tuple], n: int, out: Path) -> dict:
        import jax

        jitted = p.call.jitted
        lowered = jitted.lower(*argsets[0])
        compiled = lowered.compile()
        (out / "hlo.txt").write_text(compiled.as_text())
        (out / "stablehlo.mlir").write_text(lowered.as_text())
        artifacts: dict[str, Any] = {"hlo": "hlo.txt", "stablehlo": "stablehlo.mlir"}
        result: dict[str, Any] = {}
        try:
            cost = compiled.cost_analysis()
        except NotImplementedError:
            cost = None
        if isinstance(cost, (list, tuple)):  # older jax: one dict per program
            cost = cost[0] if len(cost) == 1 else {"programs": list(cost)}
        if cost is not None:
            (out / "cost_analysis.json").write_text(
                json.dumps(jsonable(cost), indent=1, sort_keys=True) + "\n")
            artifacts["cost_analysis"] = "cost_analysis.json"
            itemsize = get_format(p.case.dtype).itemsize
            result["cost"] = {
                "xla_flops": _get(cost, "flops"),
                "model_flops": float(p.spec.flops(p.params)),
                "xla_bytes_accessed": _get(cost, "bytes accessed"),
                "model_bytes": float(p.spec.bytes(p.params, itemsize)),
                "transcendentals": _get(cost, "transcendentals"),
            }
        with jax.profiler.trace(str(out), create_perfetto_trace=True):
            for i in range(n):  # each call a step: it tells the calls apart in the trace
                with jax.profiler.StepTraceAnnotation(STEP_NAME, step_num=i):
                    p.call(*argsets[i % len(argsets)])
                    p.sync()
        runs = sorted((out / "plugins" / "profile").glob("*"))
        if runs:
            run = runs[-1]
            chrome = [f for f in run.glob("*.trace.json.gz") if f.name != "perfetto_trace.json.gz"]
            for key, files in (("chrome_trace", chrome),
                               ("perfetto_trace", list(run.glob("perfetto_trace.json.gz"))),
                               ("xplane", list(run.glob("*.xplane.pb")))):
                if files:
                    artifacts[key] = str(files[0].relative_to(out))
            trace = chrome or list(run.glob("perfetto_trace.json.gz"))
            if trace:
                ops, spans = hlo_ops(trace[0], n)
                result["top_ops"] = ops[:KEEP_OPS]
                if spans:
                    result["profiled_per_call_s"] = sum(spans) / len(spans)
                    result["profiled_per_call_median_s"] = statistics.median(spans)
        result["artifacts"] = artifacts
        return result


def _get(cost: Any, key: str) -> float | None:
    value = cost.get(key) if isinstance(cost, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def hlo_ops(trace_path: Path, n: int) -> tuple[list[dict], list[float]]:
    """Self time per HLO operation from a Chrome-format trace (events XLA tags with `hlo_op`):
    an event's self time is its duration less that of the tagged events nested in it on the
    same thread (a while loop's body ops, a call's callee). Also the duration of each call (the
    STEP_NAME annotations), which assign each op event to its call."""
    with gzip.open(trace_path, "rt") as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    windows = sorted((float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0))) for e in events
                     if e.get("ph") == "X" and e.get("name") == STEP_NAME)
    ops = [e for e in events if e.get("ph") == "X" and (e.get("args") or {}).get("hlo_op")]
    by_thread: dict[tuple, list[dict]] = {}
    for e in ops:
        by_thread.setdefault((e.get("pid"), e.get("tid")), []).append(e)
    self_us: dict[int, float] = {}
    for evs in by_thread.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e.get("dur", 0))))
        stack: list[tuple[float, dict]] = []  # (end time, event) of the enclosing events
        for e in evs:
            while stack and stack[-1][0] <= float(e["ts"]):
                stack.pop()
            dur = float(e.get("dur", 0))
            self_us[id(e)] = dur
            if stack:
                self_us[id(stack[-1][1])] -= dur
            stack.append((float(e["ts"]) + dur, e))
    totals: dict[str, list[float]] = {}  # name -> [count, self s, total s]
    for e in ops:
        t = totals.setdefault(e["args"]["hlo_op"], [0, 0.0, 0.0])
        t[0] += 1
        t[1] += self_us[id(e)] * 1e-6
        t[2] += float(e.get("dur", 0)) * 1e-6
    per_call = split_by_call([(e["args"]["hlo_op"], float(e["ts"]), self_us[id(e)] * 1e-6)
                              for e in ops], windows)
    grand = sum(t[1] for t in totals.values())
    rows = [op_row(name, int(c), s, tot, n, grand, per_call.get(name))
            for name, (c, s, tot) in totals.items()]
    return sorted(rows, key=lambda r: -r["self_s"]), [(b - a) * 1e-6 for a, b in windows]


# -- cProfile ------------------------------------------------------------------------------------
class PythonProfiler:
    """cProfile: deterministic, in the standard library, and exact about call counts; its
    per-call overhead (~1 µs) matters only for Python-heavy code, which the summary shows."""

    name = "cProfile"

    def __init__(self, key: str = "top_ops"):
        self.key = key

    def before_prepare(self, case: Case, out: Path) -> None:
        pass

    def after_prepare(self, p: PreparedCase) -> None:
        pass

    def profile(self, p: PreparedCase, argsets: list[tuple], n: int, out: Path) -> dict:
        prof = cProfile.Profile()
        before = _lsprof_totals(prof)
        per_call: dict[tuple, list[float]] = {}
        for i in range(n):  # enabled per call: the snapshots tell the calls apart
            prof.enable()
            p.call(*argsets[i % len(argsets)])
            p.sync()
            prof.disable()
            after = _lsprof_totals(prof)
            for key, (_, inline) in after.items():
                per_call.setdefault(key, [0.0] * n)[i] = inline - before.get(key, (0, 0.0))[1]
            before = after
        prof.dump_stats(str(out / "cprofile.prof"))
        text = io.StringIO()
        stats = pstats.Stats(prof, stream=text)
        text.write(f"cProfile, {n} calls of {p.case.id}\n")
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(25)
        (out / "cprofile.txt").write_text(text.getvalue())
        rows = []
        for (file, line, func), (_, calls, tt, ct, _) in stats.stats.items():
            if file.startswith(HARNESS_DIR) or "_lsprof" in func:
                continue  # the harness's own frames (sync, the static-kwargs lambda)
            name = func if file == "~" else f"{func} ({Path(file).name}:{line})"
            rows.append((name, calls, tt, ct, per_call.get((file, line, func))))
        grand = sum(r[2] for r in rows)
        top = [op_row(name, calls, tt, ct, n, grand, samples)
               for name, calls, tt, ct, samples in sorted(rows, key=lambda r: -r[2])]
        artifacts: dict[str, Any] = {"cprofile": "cprofile.prof", "cprofile_text": "cprofile.txt"}
        result: dict[str, Any] = {self.key: top[:KEEP_OPS]}
        if p.family.name in ("numpy", "numba"):
            # cProfile charges a ufunc call or an operator on arrays to the calling function:
            # a line-level pass over the kernel's own file says which statement costs.
            result["top_lines"] = line_times(p, argsets, n, {str(Path(p.forward.__code__
                                                                      .co_filename))})
        if p.family.name == "numba":
            numba_files = save_numba_code(p, out)
            if numba_files:
                artifacts["numba_code"] = numba_files
        result["artifacts"] = artifacts
        return result


def _lsprof_totals(prof: cProfile.Profile) -> dict[tuple, tuple[int, float]]:
    """(file, line, function) -> (calls, self seconds) so far, keyed as pstats keys them."""
    totals = {}
    for entry in prof.getstats():
        code = entry.code
        key = (("~", 0, code) if isinstance(code, str)
               else (code.co_filename, code.co_firstlineno, code.co_name))
        totals[key] = (entry.callcount, entry.inlinetime)
    return totals


def line_times(p: PreparedCase, argsets: list[tuple], n: int, files: set[str]) -> list[dict]:
    """Time per source line of `files` over `n` calls (inclusive of what the line calls), like
    line_profiler: a trace function timestamps each line event in frames of those files."""
    clock = time.perf_counter
    totals: dict[tuple[str, int], list] = {}  # (file, line) -> [hits, seconds]
    pending: dict[Any, tuple[tuple[str, int], float]] = {}  # frame -> (line, its start)

    def local(frame, event, arg):
        now = clock()
        last = pending.pop(frame, None)
        if last is not None:
            t = totals.setdefault(last[0], [0, 0.0])
            t[0] += 1
            t[1] += now - last[1]
        if event == "line":
            pending[frame] = ((frame.f_code.co_filename, frame.f_lineno), clock())
        return local

    def start(frame, event, arg):
        return local if event == "call" and frame.f_code.co_filename in files else None

    sys.settrace(start)
    try:
        for i in range(n):
            p.call(*argsets[i % len(argsets)])
    finally:
        sys.settrace(None)
    grand = sum(t[1] for t in totals.values())
    rows = [{"line": f"{Path(file).name}:{line}",
             "code": linecache.getline(file, line).strip(),
             "hits_per_call": hits / n, "per_call_s": secs / n,
             "share": secs / grand if grand > 0 else None}
            for (file, line), (hits, secs) in totals.items()]
    return sorted(rows, key=lambda r: -r["per_call_s"])[:KEEP_OPS]


def save_numba_code(p: PreparedCase, out: Path) -> list[str]:
    """Assembly and parallel diagnostics of each jitted function the backend module defines."""
    from numba.core.dispatcher import Dispatcher

    folder = out / "numba"
    files = []
    for name, obj in sorted(vars(sys.modules[p.forward.__module__]).items()):
        if not isinstance(obj, Dispatcher) or not obj.signatures:
            continue
        folder.mkdir(exist_ok=True)
        for i, sig in enumerate(obj.signatures):
            asm = folder / f"{name}_{i}.s"
            asm.write_text(f"; {name}{sig}\n" + obj.inspect_asm(sig))
            files.append(str(asm.relative_to(out)))
        if getattr(obj, "targetoptions", {}).get("parallel"):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                obj.parallel_diagnostics(level=2)
            diag = folder / f"{name}_parallel.txt"
            diag.write_text(buf.getvalue())
            files.append(str(diag.relative_to(out)))
    return files


# -- one case ------------------------------------------------------------------------------------
def profilers_for(case: Case) -> list:
    family = family_of(case.backend).name
    if family == "torch":
        return [TorchProfiler()]
    if family in ("triton", "numba_cuda"):
        if case.device.startswith("cuda"):
            return [TorchProfiler()]
        # Under TRITON_INTERPRET=1 (or numba's CUDA simulator) the kernel's time is Python:
        # cProfile says where it goes; torch.profiler still gives the tensorboard run and the
        # torch ops.
        return [PythonProfiler(), TorchProfiler("torch_top_ops")]
    if family == "jax":
        return [JaxProfiler()]
    return [PythonProfiler()]


def profile_case(case: Case, settings: CaseSettings, folder: str, impl: str, out: Path,
                 threads: int, calls: int | None = None) -> dict:
    """Prepare, measure the steady-state median, profile; returns the profile index."""
    profilers = profilers_for(case)
    for prof in profilers:
        prof.before_prepare(case, out)
    p = Worker(threads).prepare(case, settings, folder, impl)
    for prof in profilers:
        prof.after_prepare(p)
    p.first_out = None
    inputs = p.take_inputs_a()
    # the benchmark's own copies and timed loop (one copy, CUDA events, L2 flush and clock
    # warm-up on a GPU; one copy under the Triton interpreter), so the median beside the
    # profile is the one `run` would record
    copies = Worker._copies(p.family, case.device, p.spec, inputs,
                            get_format(case.dtype).itemsize, settings)
    argsets = [p.convert(inputs) for _ in range(copies)]
    p.args_a = ()
    timed: dict[str, Any] = {}
    Worker._time(p.family, p.call, argsets, case.device, settings, timed)
    median_s = timed["time"]["median_s"]
    n = calls or auto_calls(median_s)
    index: dict[str, Any] = {
        "type": "profile", "schema": PROFILE_SCHEMA, "id": case.id, "case": case.to_dict(),
        "family": p.family.name, "profiler": " + ".join(pr.name for pr in profilers),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(),
        "threads": threads, "calls": n, "input_copies": copies, "compile_s": p.compile_s,
        "median_s": median_s, "time": timed["time"],
        **{k: timed[k] for k in ("timer", "clocks_settled", "contention") if k in timed},
        "flags": p.family.flags(case.backend, case.device), "artifacts": {}}
    for prof in profilers:
        found = prof.profile(p, argsets, n, out)
        index["artifacts"].update(found.pop("artifacts", {}))
        index.update(found)
    index["artifacts"]["log"] = LOG_NAME
    hottest = (index.get("cuda_kernels") or index.get("top_ops") or [None])[0]
    if hottest:
        typical = hottest.get("self_per_call_median_s")
        typical = hottest["self_per_call_s"] if typical is None else typical
        index["hot_op"] = {"name": hottest["name"], "self_per_call_s": hottest["self_per_call_s"],
                           "self_per_call_median_s": hottest.get("self_per_call_median_s"),
                           "fraction_of_median": typical / median_s if median_s else None}
    return index


def ncu_calls(case: Case, settings: CaseSettings, folder: str, impl: str, threads: int,
              calls: int) -> None:
    """Under `ncu --profile-from-start off`: prepare and warm up unprofiled, then make `calls`
    calls between cudaProfilerStart and cudaProfilerStop."""
    import torch

    p = Worker(threads).prepare(case, settings, folder, impl)
    args = p.convert(p.take_inputs_a())
    for _ in range(3):
        p.call(*args)
    p.sync()
    torch.cuda.profiler.start()
    for _ in range(calls):
        p.call(*args)
    p.sync()
    torch.cuda.profiler.stop()


def main() -> None:
    from .lifetime import die_with_parent

    die_with_parent()
    msg = json.loads(sys.stdin.read())
    case = Case.from_dict(msg["case"])
    settings = CaseSettings(**msg["settings"])
    out = Path(msg["out"])
    threads = int(os.environ.get("KERNBENCH_THREADS", os.cpu_count() or 1))
    print(f"[kernbench profile_worker] {case.id} -> {out}", flush=True)
    if msg.get("mode") == "ncu":
        ncu_calls(case, settings, msg["folder"], msg["impl"], threads, int(msg["calls"]))
        return
    index = profile_case(case, settings, msg["folder"], msg["impl"], out, threads,
                         msg.get("calls"))
    (out / INDEX_NAME).write_text(json.dumps(jsonable(index), indent=1, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
