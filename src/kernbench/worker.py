"""Run one case and return its record. Runs inside a worker process (`python -m kernbench.worker`)
or, with `--isolate none`, in the caller's process.

The order of work for a case, and why:
1. draw input set A (float64, seeded by the case id), cast/move it to the backend;
2. the first call on A is timed alone as `compile_s` (jit, torch.compile, numba compile happen
   here) and its output is checked: a kernel must be right on its first call;
3. for torch.compile, compile again after a reset: the warm-cache compile time;
4. timed samples on rotating copies of A (see kernbench.timing);
5. a fresh input set B, never timed, checked again: a kernel must be right on any valid input,
   and a kernel whose later calls differ from its first is caught;
6. one more call on fresh copies for peak memory (a separate run: tracing would distort time).
Reference outputs are computed from the inputs as the backend received them (after rounding to
the case's dtype), so the error figures measure the kernel's arithmetic, not input rounding.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import accuracy, contention, memory, timing
from .backends import family_of
from .backends.base import Unsupported
from .case import Case, CaseSettings
from .discovery import import_backend, load_kernel
from .dtypes import FLOAT_DTYPES, get_format
from .metrics import add_flag

#: Rotate input copies until the cycle exceeds this many bytes (a multiple of the LLC), so a
#: small problem is not timed from a cache that its previous call warmed.
ROTATE_CACHE_MULTIPLE = 2
MAX_COPIES = 64


def last_level_cache_bytes() -> int:
    best = 0
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in base.glob("index*"):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        best = max(best, int(text.rstrip("KMG")) * mult)
    return best or 32 << 20


def n_copies(input_bytes: int, settings: CaseSettings) -> int:
    if settings.warm_cache or input_bytes <= 0:
        return 1
    want = ROTATE_CACHE_MULTIPLE * last_level_cache_bytes()
    return int(min(MAX_COPIES, max(1, math.ceil(want / input_bytes))))


def case_seed(case: Case, seed: int, draw: int) -> np.random.Generator:
    digest = hashlib.sha256(case.id.encode()).digest()
    return np.random.default_rng([seed, draw, int.from_bytes(digest[:8], "little")])


def seen_inputs(spec, family, inputs: dict, args: tuple) -> dict:
    """Each input as the backend received it, as a float64 NumPy copy (integer inputs as drawn)."""
    return {k: (inputs[k] if k in spec.integer_inputs
                else np.array(family.to_numpy(a)[0], dtype=np.float64, copy=True))
            for k, a in zip(spec.inputs, args)}


def _kernel_frame(exc: BaseException, folder: str, impl: str) -> str:
    """Where in the kernel's own files a failure happened: the innermost traceback frame in the
    kernel's folder (`softmax_torch.py:42`), else "calling <implementation file>" (a call that
    failed before entering it: a signature the harness does not match, as a `backward` that
    takes no static params). The reason line then names the file to open without the
    traceback."""
    try:
        root = Path(folder).resolve()
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if Path(f.filename).resolve().is_relative_to(root)]
    except (OSError, ValueError):
        frames = []
    if frames:
        return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"
    return f"calling {Path(impl).name}"


class PreparedCase:
    """A case made ready to call: its family, spec, wrapped callable and first inputs."""

    def __init__(self, case: Case, settings: CaseSettings, family, spec, forward):
        self.case, self.settings, self.family, self.spec = case, settings, family, spec
        self.forward = forward
        self.params = case.param_dict
        self.statics = spec.static_kwargs(self.params)
        self.call: Any = None
        self.args_a: tuple = ()
        self.seen_a: dict = {}
        self.first_out: Any = None
        self.compile_s: float = math.nan
        self._inputs_a: dict | None = None

    def inputs(self, draw: int) -> dict[str, np.ndarray]:
        """Input set `draw` (0: timed, 1: the fresh accuracy check), float64, seeded."""
        return self.spec.make_inputs(self.params, case_seed(self.case, self.settings.seed, draw))

    def draw_inputs_a(self) -> dict[str, np.ndarray]:
        """Draw input set A for the first call, and keep it for `take_inputs_a`."""
        self._inputs_a = self.inputs(0)
        return self._inputs_a

    def take_inputs_a(self) -> dict[str, np.ndarray]:
        """Input set A, float64, as `prepare` drew it (drawn again once taken): the timed copies
        are converted from it. Kept rather than drawn twice: NumPy's generator is single-
        threaded, ~1.7 s for one 32768 x 4096 draw on the 2-core VM, a third of such a case's
        input draws. Unchanged by the first call, since every family's `to_backend` copies."""
        kept, self._inputs_a = self._inputs_a, None
        return kept if kept is not None else self.inputs(0)

    def convert(self, inputs: dict) -> tuple:
        return tuple(self.family.to_backend(inputs[k], self.case.dtype, self.case.device)
                     for k in self.spec.inputs)

    def as_seen(self, inputs: dict, args: tuple) -> dict:
        """The inputs as the backend holds them (rounded to dtype), back in float64: a copy,
        never a view (an in-place kernel would otherwise change the reference's inputs under
        it)."""
        return seen_inputs(self.spec, self.family, inputs, args)

    def sync(self) -> None:
        self.family.synchronize(self.case.device)


class Worker:
    """Caches what is costly to load (kernel specs, backend modules, family setup)."""

    def __init__(self, threads: int):
        self.threads = threads
        self._kernels: dict[str, Any] = {}
        self._modules: dict[str, Any] = {}
        self._ready: set[str] = set()

    def kernel(self, folder: str):
        if folder not in self._kernels:
            self._kernels[folder] = load_kernel(Path(folder))
        return self._kernels[folder]

    def module(self, path: str):
        if path not in self._modules:
            self._modules[path] = import_backend(Path(path))
        return self._modules[path]

    def execute(self, case: Case, settings: CaseSettings, folder: str, impl: str) -> dict:
        record: dict[str, Any] = {"type": "case", "id": case.id, **case.to_dict(),
                                  "status": None, "reason": None}
        family = family_of(case.backend)
        record["flags"] = family.flags(case.backend, case.device)
        started = time.perf_counter()
        try:
            reason = family.missing()
            if reason:
                return {**record, "status": "skipped", "reason": reason}
            reason = family.unsupported(case.backend, case.device, case.dtype)
            if reason:
                return {**record, "status": "unsupported", "reason": reason}
            if case.mode == "forward":
                self._measure(self.prepare(case, settings, folder, impl), record)
            else:
                self._measure_train(case, settings, folder, impl, record)
        except Unsupported as exc:
            record["status"], record["reason"] = "unsupported", str(exc)
        except Exception as exc:  # a backend that raises is recorded; the sweep goes on
            record["status"] = "failed"
            prefix = "out of memory: " if isinstance(exc, MemoryError) or "out of memory" in str(
                exc).lower() else ""
            where = _kernel_frame(exc, folder, impl)
            record["reason"] = f"{prefix}{type(exc).__name__}: {exc} ({where})".strip()[:2000]
            record["traceback"] = traceback.format_exc()[-4000:]
        record["wall_s"] = time.perf_counter() - started
        return record

    def _ready_for(self, family, device: str) -> None:
        """Before a case: the family's one-time setup (thread pools), then its device made
        current (cuda:N)."""
        if family.name not in self._ready:
            family.setup(self.threads)
            self._ready.add(family.name)
        family.use_device(device)

    def prepare(self, case: Case, settings: CaseSettings, folder: str, impl: str) -> PreparedCase:
        """Everything up to steady state: inputs drawn and converted, the implementation wrapped
        (jit/compile), and its first call made. Used by the measurement below and by anything
        else that needs a ready-to-call case (the profiler, A/B runs). Raises if unsupported."""
        family = family_of(case.backend)
        reason = family.missing() or family.unsupported(case.backend, case.device, case.dtype)
        if reason:
            raise RuntimeError(f"{case.id}: cannot run here: {reason}")
        self._ready_for(family, case.device)
        spec = self.kernel(folder).spec
        module = self.module(impl)
        forward = getattr(module, "forward", None)
        if not callable(forward):
            raise TypeError(f"{module.__file__}: forward is not callable")
        p = PreparedCase(case, settings, family, spec, forward)
        inputs_a = p.draw_inputs_a()
        p.args_a = p.convert(inputs_a)
        p.seen_a = p.as_seen(inputs_a, p.args_a)  # before the call: it may update inputs
        family.reset_compile_counters(case.backend)
        p.call = family.prepare(case.backend, forward, p.statics, case.device)
        family.synchronize(case.device)
        t0 = time.perf_counter()
        p.first_out = p.call(*p.args_a)
        family.synchronize(case.device)
        p.compile_s = time.perf_counter() - t0
        return p

    def _measure(self, p: PreparedCase, record: dict) -> None:
        case, settings, family, spec = p.case, p.settings, p.family, p.spec
        params, dev, dtype, prepared = p.params, case.device, case.dtype, p.call
        record["compile_s"] = p.compile_s
        errors, out_elems = self._errors(spec, params, p.seen_a, p.first_out, family, dtype)
        p.first_out = None
        inputs_a = p.take_inputs_a()
        convert, as_seen = p.convert, p.as_seen
        p.args_a = ()  # the timed copies below are fresh conversions
        if case.backend == "torch_compile":
            counters_cold = family.compile_info(case.backend)
            prepared = family.prepare(case.backend, p.forward, p.statics, dev)
            t0 = time.perf_counter()
            prepared(*convert(inputs_a))
            family.synchronize(dev)
            record["compile"] = {"cold_s": record["compile_s"],
                                 "warm_s": time.perf_counter() - t0, **counters_cold}
            family.reset_compile_counters(case.backend)

        itemsize = get_format(dtype).itemsize
        copies = self._copies(family, dev, spec, inputs_a, itemsize, settings)
        self._time(family, prepared, [convert(inputs_a) for _ in range(copies)], dev, settings,
                   record)
        if case.backend == "torch_compile":
            info = family.compile_info(case.backend) or {}
            record["compile"]["recompiles"] += info.get("graphs", 0) + info.get("recompiles", 0)

        inputs_b = p.inputs(1)
        args_b = convert(inputs_b)
        seen_b = as_seen(inputs_b, args_b)
        errors_b, _ = self._errors(spec, params, seen_b, prepared(*args_b), family, dtype)
        errors = self._worst_of(errors, errors_b)
        record["accuracy"] = accuracy.summarize(errors)

        if settings.memory:
            method = family.memory_method(dev)
            args_m = convert(inputs_b)
            peak = memory.measure_peak(method, lambda: prepared(*args_m), device=dev,
                                       prepared=prepared, args=args_m)
            out_bytes = out_elems * itemsize
            record["memory"] = {"peak_bytes": peak, "method": method,
                                "output_bytes": out_bytes,
                                "io_bytes": spec.input_bytes(inputs_b, itemsize) + out_bytes}
        self._verdict(record, errors, "output")

    def _measure_train(self, case: Case, settings: CaseSettings, folder: str, impl: str,
                       record: dict) -> None:
        """`backward` and `forward_backward` modes: gradients checked against the spec's
        analytic float64 reference, then timed (backward alone, given a saved forward state;
        or the whole step), and the saved state's bytes recorded."""
        family = family_of(case.backend)
        spec = self.kernel(folder).spec
        if not spec.differentiable:
            raise Unsupported(f"{spec.name} is not differentiable (its spec has no grad_inputs)")
        self._ready_for(family, case.device)
        module = self.module(impl)
        params, dev, dtype = case.param_dict, case.device, case.dtype
        trainer = family.prepare_train(case.backend, module, spec.static_kwargs(params), dev,
                                       spec)
        grads_of = set(spec.grad_inputs)

        def convert(inputs: dict) -> tuple:
            return tuple(family.to_backend_train(inputs[k], dtype, dev, k in grads_of)
                         for k in spec.inputs)

        def seen(inputs: dict, args: tuple) -> dict:
            return seen_inputs(spec, family, inputs, args)

        def draw(n: int) -> tuple[dict, tuple, dict, Any, tuple, tuple, Callable[[], tuple]]:
            """Inputs, their conversion, the forward state, cotangents (backend and as the
            backend saw them), and a maker of fresh copies of those cotangents."""
            inputs = spec.make_inputs(params, case_seed(case, settings.seed, n))
            args = convert(inputs)
            state = trainer.state(*args)
            outs = [family.to_numpy(o) for o in trainer.outputs(state)]
            cot64 = spec.make_grad_outputs(params, case_seed(case, settings.seed, n + 10),
                                           tuple(o for o, _ in outs))

            def fresh_cot() -> tuple:
                return tuple(family.to_backend(np.asarray(c), stored, dev)
                             for c, (_, stored) in zip(cot64, outs))

            cot = fresh_cot()
            cot_seen = tuple(family.to_numpy(c)[0] for c in cot)
            return inputs, args, seen(inputs, args), state, cot, cot_seen, fresh_cot

        def check(seen_inputs, cot_seen, grads) -> list[accuracy.OutputError]:
            refs = spec.reference_backward(seen_inputs, params, cot_seen)
            if len(grads) != len(spec.grad_inputs):
                raise ValueError(f"backward returned {len(grads)} gradients, the spec names "
                                 f"{len(spec.grad_inputs)}: {', '.join(spec.grad_inputs)}")
            return [self._check(family, f"d_{name}", g, r, dtype,
                                lambda stored, name=name: spec.grad_tolerance(params, stored,
                                                                              name))
                    for name, g, r in zip(spec.grad_inputs, grads, refs)]

        t0 = time.perf_counter()
        inputs_a, args_a, seen_a, state_a, cot_a, cot_seen_a, fresh_cot_a = draw(0)
        family.synchronize(dev)
        t1 = time.perf_counter()
        grads_a = trainer.backward(state_a, *cot_a)
        family.synchronize(dev)
        record["compile_s"] = time.perf_counter() - t0
        record["compile"] = {"forward_s": t1 - t0, "backward_s": time.perf_counter() - t1}
        errors = check(seen_a, cot_seen_a, grads_a)
        del grads_a, state_a

        itemsize = get_format(dtype).itemsize
        copies = self._copies(family, dev, spec, inputs_a, itemsize, settings)
        # Each copy carries its own cotangents (and, for `backward`, its own saved forward
        # state): a cotangent shared by every copy stays in cache, and a backward that reads
        # little else (RoPE's) was timed warm, above the copy bandwidth.
        if case.mode == "backward":
            call = trainer.backward
            argsets = [(trainer.state(*convert(inputs_a)), *fresh_cot_a())
                       for _ in range(copies)]
        else:
            call = trainer.forward_backward
            argsets = [(*convert(inputs_a), *fresh_cot_a()) for _ in range(copies)]
        self._time(family, call, argsets, dev, settings, record)
        del argsets

        inputs_b, args_b, seen_b, state_b, cot_b, cot_seen_b, _ = draw(1)
        grads_b = trainer.forward_backward(*convert(inputs_b), *cot_b)
        errors_b = check(seen_b, cot_seen_b, grads_b)
        del grads_b
        errors = self._worst_of(errors, errors_b)
        record["accuracy"] = accuracy.summarize(errors)

        if settings.memory:
            method = family.memory_method(dev)
            if method == "jax.memory_analysis":  # the timed call is one executable: its plan
                state_or_args = state_b if case.mode == "backward" else args_b
                peak = trainer.planned_peak_bytes(case.mode, state_or_args, cot_b)
            elif case.mode == "backward":
                peak = memory.measure_peak(method, lambda: trainer.backward(state_b, *cot_b),
                                           device=dev)
            else:
                args_m = convert(inputs_b)
                peak = memory.measure_peak(method,
                                           lambda: trainer.forward_backward(*args_m, *cot_b),
                                           device=dev)
            grad_bytes = sum(int(np.asarray(seen_b[g]).size) for g in spec.grad_inputs) * itemsize
            record["memory"] = {"peak_bytes": peak, "method": method,
                                "output_bytes": grad_bytes,
                                "saved_bytes": trainer.saved_bytes(*convert(inputs_b)),
                                "io_bytes": spec.input_bytes(inputs_b, itemsize) + grad_bytes}
        self._verdict(record, errors, "gradient")

    @staticmethod
    def _copies(family, dev, spec, inputs, itemsize, settings) -> int:
        """How many input copies the timed loop rotates through (1 on a GPU: its L2 is
        flushed before every call instead)."""
        if family.is_gpu(dev):
            return 1
        if "interpreted" in family.flags("", dev):  # no cache to defeat; copies cost a run each
            return 1
        return n_copies(spec.input_bytes(inputs, itemsize), settings)

    @staticmethod
    def _time(family, call, argsets, dev, settings, record) -> None:
        """Warm up (on a GPU until clocks settle), then sample; adds `time` to the record."""
        block = family.make_block(call, argsets, dev, settings)
        warmup_s = settings.warmup_s
        if family.is_gpu(dev):
            from .gpu_timing import warm_until_settled

            record["clocks_settled"] = warm_until_settled(block, min_s=settings.warmup_s)
            # which clock produced the figures: a suite's cuda_graph = true is honoured by the
            # torch-launched families only, and JAX times by the host clock
            record["timer"] = family.gpu_timer(settings)
            warmup_s = 0.0
        with contention.Window() as window:
            measurement = timing.measure(
                block, budget_s=settings.budget_s, min_block_s=settings.min_block_s,
                min_samples=settings.min_samples, max_samples=settings.max_samples,
                warmup_s=warmup_s)
        record["time"] = measurement.to_dict()
        record["input_copies"] = len(argsets)
        found = window.result()
        if found is not None:
            record["contention"] = found
            if contention.contended(found):
                add_flag(record, "contended")

    @staticmethod
    def _worst_of(first: list, second: list) -> list:
        """Per output, the worse of two checks (input draws A and B)."""
        return [max(pair, key=lambda e: (not e.passed, _finite(e.rel_l2)))
                for pair in zip(first, second)]

    @staticmethod
    def _verdict(record: dict, errors: list, what: str) -> None:
        if record["accuracy"]["passed"]:
            record["status"] = "ok"
            return
        worst = next(e for e in errors if not e.passed)
        record["status"] = "failed"
        record["reason"] = f"inaccurate: {what} {worst.name}: {worst.reason}"
        record["flags"].append("inaccurate")

    def _check(self, family, name, out, ref, dtype, tolerance) -> accuracy.OutputError:
        """One output against its reference, in the format the backend stored it in (the
        case's dtype where that is not a float format kernbench knows), held to
        `tolerance(stored)`, and compared in the run's threads (outside any timed region)."""
        got, stored = family.to_numpy(out)
        stored = stored if stored in FLOAT_DTYPES else dtype
        return accuracy.compare(name, got, ref, stored, tolerance(stored).bound(stored),
                                threads=self.threads)

    def _errors(self, spec, params, seen, out, family,
                dtype) -> tuple[list[accuracy.OutputError], int]:
        """Each output against its reference; also the number of output elements."""
        refs = spec.reference(seen, params)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(spec.outputs):
            raise ValueError(f"forward returned {len(outs)} outputs, the spec names "
                             f"{len(spec.outputs)}: {', '.join(spec.outputs)}")
        result = [self._check(family, name, o, r, dtype,
                              lambda stored: spec.tolerance(params, stored))
                  for name, o, r in zip(spec.outputs, outs, refs)]
        return result, sum(int(np.asarray(r).size) for r in refs)


def _finite(x: float) -> float:
    return math.inf if (x is None or math.isnan(x)) else x


# -- the worker process ------------------------------------------------------------------------
def main() -> None:
    """Read one JSON message per line on stdin, answer one JSON record per line.

    The protocol uses a duplicate of the original stdout; fd 1 itself is pointed at stderr, so a
    kernel (or a C library) printing cannot corrupt the protocol."""
    from .lifetime import die_with_parent

    die_with_parent()
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    limit = os.environ.get("KERNBENCH_MEMORY_LIMIT")
    if limit:  # an address-space cap: a runaway allocation raises MemoryError here, recorded
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    worker = Worker(int(os.environ.get("KERNBENCH_THREADS", os.cpu_count() or 1)))
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        case = Case.from_dict(msg["case"])
        settings = CaseSettings(**msg["settings"])
        print(f"[kernbench worker] {case.id}", file=sys.stderr, flush=True)
        record = worker.execute(case, settings, msg["folder"], msg["impl"])
        proto.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
        proto.flush()


def jsonable(value: Any) -> Any:
    """Make a record strict JSON: NaN -> null, inf -> "inf", NumPy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


if __name__ == "__main__":
    main()
