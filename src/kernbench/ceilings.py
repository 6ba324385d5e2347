"""This machine's limits, measured: copy bandwidth (bytes read + written), in-place update
bandwidth (bytes read + written back to the same buffer), reduction bandwidth (bytes read) and
GEMM rate per dtype, with the run's threads, each through NumPy, torch and JAX.

Why a separate in-place figure: a copy into another buffer also reads each destination line
before writing it (write-allocate), traffic the "2 x bytes" convention does not count, while
an in-place update (AdamW's param, exp_avg, exp_avg_sq) writes lines it has just read. Measured
here, `x *= -1` moves ~1.2-1.5x the counted bytes per second of a copy: against the copy figure
an honest in-place kernel would look faster than the machine (flagged `suspect`).

Each figure is the best of several libraries and repetitions: a ceiling is what the hardware can
be made to do, so the best observed run is the estimate (noise only ever slows a run down).
Measured in a subprocess (`python -m kernbench.ceilings`) because it imports torch, and cached
per machine fingerprint and thread count under results/ceilings/ so runs do not pay for it
each time; `kernbench calibrate --force` measures again. A run measures only the parts (the
CPU, the GPUs) its cases use, and adds them to the cache: a GPU-only suite on a lent GPU,
whose every second counts, does not pay ~10 s for CPU GEMMs and JAX's start first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .backends.base import is_cuda

CACHE_DIR = Path("results") / "ceilings"
COPY_BYTES = 256 << 20  # far above any last-level cache
GEMM_N = 2048
#: best of this many for every figure, GEMM included: best-of-3 GEMM ceilings were seen 20% low
#: (378 vs 489 GFLOP/s), which flagged an honestly timed JAX matmul `suspect`
REPEATS = 7


def _best(fn, repeats: int = REPEATS) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _cpu_buffers():
    import numpy as np

    a = np.random.default_rng(0).standard_normal(COPY_BYTES // 4, dtype=np.float32)
    return a, np.empty_like(a)


def _cpu_bandwidth(a, b, threads: int) -> tuple[dict, dict, dict]:
    """GB/s of copy, in-place update and read of the float32 buffers `a`, `b`, per library
    (NumPy, and torch where installed)."""
    import numpy as np

    copy = {"numpy": 2 * a.nbytes / _best(lambda: np.copyto(b, a)) / 1e9}
    minus = np.float32(-1.0)  # flips signs: the data stays the same set of values
    update = {"numpy": 2 * a.nbytes / _best(lambda: np.multiply(a, minus, out=a)) / 1e9}
    read = {"numpy": a.nbytes / _best(lambda: a.sum()) / 1e9}
    try:
        import torch

        torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        copy["torch"] = 2 * a.nbytes / _best(lambda: tb.copy_(ta)) / 1e9
        update["torch"] = 2 * a.nbytes / _best(lambda: ta.mul_(-1.0)) / 1e9
        read["torch"] = a.nbytes / _best(lambda: ta.sum()) / 1e9
    except ImportError:
        pass
    return copy, update, read


def measure_cpu_memory(threads: int) -> dict:
    """The memory roof alone, measured again: what `kernbench.runner` asks for when a case
    looks faster than the run's roof (a shared VM's bandwidth can rise within a run)."""
    copy, update, _ = _cpu_bandwidth(*_cpu_buffers(), threads)
    return {"copy_gbps": max(copy.values()), "update_gbps": max(update.values()),
            "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "method": {"copy_gbps": copy, "update_gbps": update, "bytes": COPY_BYTES,
                       "estimator": f"best of {REPEATS}"}}


def measure_cpu(threads: int) -> dict:
    import numpy as np

    result: dict = {"threads": threads, "method": {}}
    a, b = _cpu_buffers()
    copy, update, read = _cpu_bandwidth(a, b, threads)
    gemm: dict[str, dict[str, float]] = {}
    flops = 2.0 * GEMM_N**3
    for dtype in ("float64", "float32"):
        x = np.random.default_rng(1).standard_normal((GEMM_N, GEMM_N)).astype(dtype)
        gemm.setdefault(dtype, {})["numpy"] = flops / _best(lambda x=x: x @ x) / 1e9
    try:
        import torch

        for dtype in ("float64", "float32", "bfloat16"):  # CPU float16 GEMM: ~0.4 GFLOP/s, unused
            x = torch.randn(GEMM_N, GEMM_N, dtype=getattr(torch, dtype))
            gemm.setdefault(dtype, {})["torch"] = flops / _best(lambda x=x: x @ x) / 1e9
    except ImportError:
        pass
    try:  # XLA's CPU GEMM (YNNPACK) outruns OpenBLAS and oneDNN on some CPUs: a ceiling must
        # be the best any library reaches, or a faster library would look "above the ceiling".
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        try:  # the CPU, not JAX's default device: with the CUDA plugin installed that is a GPU,
            # whose rates as `cpu` ceilings would hide every too-fast CPU case
            cpu = jax.devices("cpu")[0]
        except RuntimeError:  # JAX_PLATFORMS without cpu: no JAX figure rather than a GPU one
            cpu = None
        if cpu is not None:
            # arrays committed to `cpu`, so the jitted functions run there
            with jax.default_device(cpu):
                for dtype in ("float64", "float32", "bfloat16"):
                    x = jnp.asarray(np.random.default_rng(1).standard_normal((GEMM_N, GEMM_N)),
                                    dtype=dtype, device=cpu)
                    mm = jax.jit(lambda x: jnp.matmul(x, x, precision="highest",
                                                      preferred_element_type=x.dtype))
                    gemm.setdefault(dtype, {})["jax"] = flops / _best(
                        lambda x=x, mm=mm: mm(x).block_until_ready()) / 1e9
                xc = jnp.asarray(a, device=cpu)
                copy_fn = jax.jit(lambda v: v + 0)  # a copy XLA cannot elide: a new buffer
                copy["jax"] = 2 * a.nbytes / _best(
                    lambda: copy_fn(xc).block_until_ready()) / 1e9
    except ImportError:
        pass
    result["copy_gbps"] = max(copy.values())
    result["update_gbps"] = max(update.values())
    result["read_gbps"] = max(read.values())
    result["gemm_gflops"] = {k: max(v.values()) for k, v in gemm.items()}
    result["method"] = {"copy_gbps": copy, "update_gbps": update, "read_gbps": read,
                        "gemm_gflops": gemm,
                        "bytes": COPY_BYTES, "gemm_n": GEMM_N,
                        "estimator": f"best of {REPEATS}"}
    return result


GPU_COPY_BYTES = 1 << 30
GPU_GEMM_N = 8192


def _best_cuda(fn, repeats: int = 10) -> float:
    """Best device time of `fn` (seconds) between CUDA events, after warm-up."""
    import torch

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3)
    return best


def _cuda_bandwidth(dev) -> tuple[float, float, float]:
    """(copy, in-place update, read) bytes per second of 1 GiB float32 buffers on `dev`."""
    import torch

    x = torch.randn(GPU_COPY_BYTES // 4, device=dev)
    y = torch.empty_like(x)
    return (2 * x.nbytes / _best_cuda(lambda: y.copy_(x)),
            2 * x.nbytes / _best_cuda(lambda: x.mul_(-1.0)), x.nbytes / _best_cuda(x.sum))


def measure_cuda(index: int) -> dict:
    """One GPU: device-to-device copy (read + write), reduction (read), GEMM per dtype on random
    data (tensor cores for bf16/fp16; float32 without TF32, and TF32 separately)."""
    import torch

    dev = torch.device("cuda", index)
    props = torch.cuda.get_device_properties(dev)
    with torch.cuda.device(dev):
        copy, update, read = _cuda_bandwidth(dev)
        gemm, flops = {}, 2.0 * GPU_GEMM_N**3
        old = torch.backends.cuda.matmul.allow_tf32
        for dtype in ("bfloat16", "float16", "float32", "tf32", "float64"):
            torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
            tdtype = torch.float32 if dtype == "tf32" else getattr(torch, dtype)
            n = GPU_GEMM_N if dtype not in ("float64",) else GPU_GEMM_N // 2
            a = torch.randn(n, n, device=dev, dtype=tdtype)
            gemm[dtype] = (2.0 * n**3 if n != GPU_GEMM_N else flops) / _best_cuda(
                lambda a=a: a @ a) / 1e9
            del a
        torch.backends.cuda.matmul.allow_tf32 = old
    return {"name": props.name, "sm_count": props.multi_processor_count,
            "l2_bytes": getattr(props, "L2_cache_size", None), "memory_bytes": props.total_memory,
            "copy_gbps": copy / 1e9, "update_gbps": update / 1e9, "read_gbps": read / 1e9,
            "gemm_gflops": gemm,
            "method": {"copy_bytes": GPU_COPY_BYTES, "gemm_n": GPU_GEMM_N, "timer": "cuda events",
                       "estimator": "best of 10 after 3 warm-ups", "float64_gemm_n":
                       GPU_GEMM_N // 2}}


#: what a calibration can measure: the host CPU, and every CUDA GPU torch sees
PARTS = ("cpu", "cuda")


def part_of(device: str) -> str:
    """The calibration part a case's device needs: `cuda` for cuda and cuda:N."""
    return "cuda" if is_cuda(device) else "cpu"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def measure(threads: int, parts: tuple[str, ...] = PARTS) -> dict:
    """The ceilings of `parts`, each device's stamped with when it was measured. `parts`
    records what was looked for: `cuda` measured on a machine without a GPU finds no device,
    and a cache saying so is not measured again."""
    result: dict = {"parts": sorted(parts), "measured": _now()}
    if "cpu" in parts:
        result["cpu"] = {**measure_cpu(threads), "measured": _now()}
    if "cuda" in parts:
        try:
            import torch

            if torch.cuda.is_available():
                for i in range(torch.cuda.device_count()):
                    result[f"cuda:{i}"] = {**measure_cuda(i), "measured": _now()}
        except ImportError:
            pass
    return result


def measure_in_subprocess(threads: int, env: dict[str, str], memory_only: bool = False,
                          timeout: float = 600, parts: tuple[str, ...] = PARTS) -> dict:
    """`measure` (or `measure_cpu_memory`) in a fresh `python -m kernbench.ceilings`."""
    # measure_cpu imports JAX, which (CUDA plugin installed) creates its GPU client even when
    # asked only for the CPU device, and would reserve 75% of each GPU's memory for the rest of
    # the process, measure_cuda's torch buffers included (as the JAX worker env does, too)
    env = {**env, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    argv = [sys.executable, "-m", "kernbench.ceilings", str(threads)]
    argv += ["--memory"] if memory_only else ["--parts", ",".join(parts)]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"calibration failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class MemoryRecheck:
    """The CPU memory roof measured again when a case looks faster than the run's roof
    (kernbench.metrics.rejudge), in a subprocess with the workers' environment (~3 s, torch's
    import included). One measurement serves for `max_age_s`: a backend that really misses a
    synchronisation is suspect in every case, and must not pay for one per case. Kept short
    because this VM's bandwidth changes within a minute: update 71.8 GB/s at 16:17:46 and
    137.8 at 16:18:49 (one day, two runs of the AdamW cases). A failed measurement is
    remembered as None for as long: the case then stays suspect."""

    def __init__(self, threads: int, env: dict[str, str], max_age_s: float = 15.0):
        self.threads, self.env, self.max_age_s = threads, env, max_age_s
        self._found: dict | None = None
        self._at = -float("inf")

    def now(self) -> dict | None:
        if time.monotonic() - self._at >= self.max_age_s:
            try:
                self._found = measure_in_subprocess(self.threads, self.env, memory_only=True,
                                                    timeout=120)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError, IndexError):
                self._found = None
            self._at = time.monotonic()
        return self._found


def describe(data: dict) -> str:
    """One line on where a run's ceilings came from, for the terminal: a figure measured days
    ago on a shared VM is not the same evidence as one measured now."""
    cpu = data.get("cpu") or {}
    segments = [", ".join(f"{name} {cpu[key]:.1f} GB/s" for key, name in (
        ("copy_gbps", "copy"), ("update_gbps", "update")) if isinstance(cpu.get(key), float))]
    for device, gpu in sorted(data.items()):  # each GPU's own roof and bf16 tensor-core rate
        if device.startswith("cuda:") and isinstance(gpu, dict):
            copy, bf16 = gpu.get("copy_gbps"), (gpu.get("gemm_gflops") or {}).get("bfloat16")
            segments.append(f"{device} ({gpu.get('name')})"
                            + (f" copy {copy:.0f} GB/s" if copy else "")
                            + (f", bf16 GEMM {bf16 / 1e3:.0f} TFLOP/s" if bf16 else ""))
    figures = "; ".join(s for s in segments if s) or "no figures"
    if not data.get("cached"):
        return f"{figures}, measured now"
    now = data.get("measured_now") or []
    kept = [p for p in _parts_held(data) if p not in now]
    # the kept devices' own stamps (a part is measured when a run first needs it); a file
    # from before parts were stamped has one stamp for the whole
    stamps = sorted({v.get("measured") for k, v in data.items()
                     if isinstance(v, dict) and part_of(k) in kept} - {None}) \
        or [data.get("measured")]
    when = "" if not stamps[0] else (
        f", measured {stamps[0]}" + (f" to {stamps[-1]}" if stamps[-1] != stamps[0] else ""))
    fresh = f"; {', '.join(now)} measured now, {', '.join(sorted(kept))}" if now else ""
    return f"{figures}{fresh} from {data['cached']}{when} (--calibrate force measures again)"


def cache_path(fingerprint: str, threads: int, cache_dir: Path | None = None) -> Path:
    return (cache_dir or CACHE_DIR) / f"{fingerprint}-t{threads}.json"


def _parts_held(data: dict) -> set[str]:
    """The parts a cached file measured (none: no file). A file written before parts were
    recorded measured them all."""
    if not data:
        return set()
    held = data.get("parts")
    return set(held) if isinstance(held, list) else set(PARTS)


def _merge(cached: dict, held: set[str], fresh: dict) -> dict:
    """`fresh` parts over the `held` parts of `cached`: a part measured again replaces all its
    devices (a GPU that is gone is dropped); the other parts are kept as they were."""
    again = set(fresh["parts"])
    kept = {k: v for k, v in cached.items()
            if isinstance(v, dict) and part_of(k) in held - again}
    return {**kept, **fresh, "parts": sorted(held | again)}


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:  # a torn file is measured again
        return {}


def load_or_measure(fingerprint: str, threads: int, env: dict[str, str],
                    force: bool = False, cache_dir: Path | None = None,
                    parts: tuple[str, ...] = PARTS,
                    on_measure: Callable[[tuple[str, ...]], None] | None = None) -> dict:
    """The cached ceilings, with the parts of `parts` the cache lacks (all of them with
    `force`) measured now and added to it; `on_measure` is told which, before they are.
    `cached` names the file when any figure came from it, and `measured_now` the parts this
    call measured."""
    path = cache_path(fingerprint, threads, cache_dir)
    cached = _load(path)
    held = _parts_held(cached)
    wanted = tuple(p for p in PARTS if p in parts and (force or p not in held))
    if not wanted:
        return {**cached, "cached": str(path)}
    if on_measure is not None:
        on_measure(wanted)
    data = _merge(cached, held, measure_in_subprocess(threads, env, parts=wanted))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    reused = bool(held - set(wanted))  # figures kept from the file
    return {**data, "cached": str(path) if reused else None, "measured_now": list(wanted)}


def _main(argv: list[str]) -> dict:
    """`python -m kernbench.ceilings THREADS [--memory | --parts cpu,cuda]`."""
    threads = int(argv[0]) if argv else os.cpu_count() or 1
    if "--memory" in argv[1:]:
        return measure_cpu_memory(threads)
    if "--parts" in argv[1:]:
        parts = tuple(argv[argv.index("--parts") + 1].split(","))
        unknown_parts = set(parts) - set(PARTS)
        if unknown_parts:
            raise SystemExit(f"unknown parts {sorted(unknown_parts)}; known: {PARTS}")
        return measure(threads, parts)
    return measure(threads)


if __name__ == "__main__":
    print(json.dumps(_main(sys.argv[1:])))
