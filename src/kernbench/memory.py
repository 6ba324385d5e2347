"""Peak memory of one call above the pre-call baseline, by the best method a backend allows.

- `tracemalloc`: exact for NumPy (which reports its buffers to it) and numba arrays; blind to
  torch and JAX, which allocate outside Python's allocator.
- `rss`: peak resident set size (VmHWM) after resetting it through /proc/self/clear_refs, minus
  the RSS before the call. Coarse (pages, allocator caching), but sees every allocation. Free
  heap memory is first handed back to the OS (`malloc_trim`): the runner's allocator settings
  keep freed buffers resident for reuse, which would otherwise hide the call's allocations.
- `torch.cuda`: the CUDA caching allocator's peak statistics, reset before the call.
- `jax.memory_analysis`: XLA's compiled plan (temporaries + outputs), exact for what XLA allocates.
- `cupy.mempool`: CuPy's memory pool emptied before the call; the pool's size after it is the
  most it had to hold at once (freed blocks are cached and reused, not returned), rounded to
  its 512-byte blocks.

Every record names its method; figures from different methods are not interchangeable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

from .backends.base import device_index


def _malloc_trim() -> None:
    """Return glibc's free heap memory to the OS (a no-op where there is no glibc)."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_tracemalloc(call: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        out = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del out
    return max(0, peak - base)


def peak_rss(call: Callable[[], Any]) -> int | None:
    gc.collect()
    _malloc_trim()
    if not _reset_peak_rss():
        return None
    base = _status_kib("VmRSS")
    out = call()
    peak = _status_kib("VmHWM")
    del out
    if base is None or peak is None:
        return None
    return max(0, peak - base) * 1024


def peak_torch_cuda(call: Callable[[], Any], device: str) -> int:
    import torch

    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    out = call()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    del out
    return max(0, peak - base)


def peak_cupy_pool(call: Callable[[], Any], device: str) -> int:
    import cupy

    index = device_index(device)
    with cupy.cuda.Device(index):
        pool = cupy.get_default_memory_pool()
        cupy.cuda.Device(index).synchronize()
        pool.free_all_blocks()
        base = pool.used_bytes()
        out = call()
        cupy.cuda.Device(index).synchronize()
        peak = pool.total_bytes()
        del out
    return max(0, peak - base)


def jax_memory_analysis(jitted: Any, args: tuple) -> int | None:
    compiled = jitted.lower(*args).compile()
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes
               - getattr(stats, "alias_size_in_bytes", 0))


def measure_peak(method: str, call: Callable[[], Any], *, device: str = "cpu",
                 prepared: Any = None, args: tuple = ()) -> int | None:
    if method == "tracemalloc":
        return peak_tracemalloc(call)
    if method == "rss":
        return peak_rss(call)
    if method == "torch.cuda":
        return peak_torch_cuda(call, device)
    if method == "jax.memory_analysis":
        return jax_memory_analysis(prepared.jitted, args)
    if method == "cupy.mempool":
        return peak_cupy_pool(call, device)
    raise ValueError(f"unknown memory method {method!r}")
