"""What every numba-cuda kernel file shares: launching `@cuda.jit` kernels on torch tensors, and
block-wide reductions.

The `numba_cuda` backend keeps its data in torch tensors, as Triton's does: torch allocates (so
the caching allocator's peak statistics measure memory, and CUDA events and the L2 flush come
from the torch adapter), numba-cuda compiles and launches the kernels. On a GPU a tensor is
handed to numba through `__cuda_array_interface__` without a copy and without the host-blocking
stream synchronisation numba does by default (`sync=False`), and kernels are launched on torch's
current stream, so they are ordered with torch's work, timed by its events and can be captured
into a CUDA graph. On a CPU the kernels run in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1,
set by the worker before numba is imported) on the tensors' own memory: slow, but it runs the
kernel's code thread by thread, barriers and shared memory included.

The simulator has no warp shuffles, so block reductions go through shared memory in a
barrier-separated tree; on a GPU that costs log2(threads) barriers per reduction, small next to
streaming a row of a memory-bound kernel.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import numba
import torch
from numba import cuda

#: numba's CUDA simulator is on: kernels run as Python threads on the host
SIMULATED = bool(numba.config.ENABLE_CUDASIM)

SIMULATOR_SWITCH_INTERVAL_S = 5e-4

_TYPES = {torch.float32: numba.float32, torch.float64: numba.float64}


def _make_simulator_shared_arrays_thread_safe() -> None:
    """numba's simulator hands every thread of a block the same `cuda.shared.array` by looking
    up the calling line in a dict and creating the array when absent, without a lock: when the
    block's threads start together, a thread switch between the lookup and the insert gives a
    thread a private array, its shared-memory writes are lost, and a block reduction comes out
    wrong (seen: a cross-entropy gradient 12% off, once in several test runs). The same lookup,
    under a lock (and without building a whole traceback per call)."""
    import threading

    import numpy as np
    from numba.core import types
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    from numba.np import numpy_support

    if getattr(FakeCUDAShared, "_kernbench_locked", False):
        return
    original = FakeCUDAShared.array
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory: one buffer, no race
            return original(self, shape, dtype, alignment)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)  # what the original keys on
        with lock:
            res = self._allocations.get(key)
            if res is None:
                if isinstance(dtype, types.Type):
                    dtype = numpy_support.as_dtype(dtype)
                res = self._allocations[key] = np.empty(shape, dtype)
        return res

    FakeCUDAShared.array = array
    FakeCUDAShared._kernbench_locked = True


if SIMULATED:
    _make_simulator_shared_arrays_thread_safe()


def numba_type(dtype: torch.dtype):
    """The numba scalar type kernels compute in for a tensor dtype (float32 or float64)."""
    try:
        return _TYPES[dtype]
    except KeyError:
        raise TypeError(f"numba_cuda kernels take float32 or float64 tensors, not {dtype}"
                        ) from None


def kernel_arg(t: Any) -> Any:
    """A tensor as an array numba kernels accept (same memory); anything else unchanged."""
    if not isinstance(t, torch.Tensor):
        return t
    if t.is_cuda:
        return cuda.as_cuda_array(t.detach(), sync=False)
    return t.detach().numpy()


def launch(kernel: Any, grid: int | tuple, block: int | tuple, *args: Any) -> None:
    """Launch `kernel[grid, block]` on the device (and current torch stream) of the tensors."""
    device = next(a.device for a in args if isinstance(a, torch.Tensor))
    arrays = [kernel_arg(a) for a in args]
    if device.type != "cuda":
        # The simulator's block manager busy-polls its threads for barriers: with Python's
        # default 5 ms thread switch interval every barrier costs milliseconds (5x slower)
        interval = sys.getswitchinterval()
        sys.setswitchinterval(SIMULATOR_SWITCH_INTERVAL_S)
        try:
            kernel[grid, block](*arrays)
        finally:
            sys.setswitchinterval(interval)
        return
    index = device.index if device.index is not None else torch.cuda.current_device()
    with cuda.gpus[index]:
        stream = cuda.external_stream(torch.cuda.current_stream(device).cuda_stream)
        kernel[grid, block, stream](*arrays)


def per_dtype(build):
    """Cache a kernel factory `build(T)` (T a numba scalar type) per dtype: numba kernels whose
    constants and shared arrays take the input's precision."""
    cached = functools.cache(build)

    @functools.wraps(build)
    def get(dtype: torch.dtype):
        return cached(numba_type(dtype))

    return get


def _block_reduction(combine):
    """A block-wide reduction device function for the device function `combine(a, b)`."""

    @cuda.jit(device=True)
    def reduce(value, shared):
        tid = cuda.threadIdx.x
        shared[tid] = value
        cuda.syncthreads()
        step = cuda.blockDim.x // 2
        while step > 0:
            if tid < step:
                shared[tid] = combine(shared[tid], shared[tid + step])
            cuda.syncthreads()
            step //= 2
        total = shared[0]
        cuda.syncthreads()  # shared[0] is read before the next reduction may overwrite it
        return total

    return reduce


@cuda.jit(device=True)
def _add(a, b):
    return a + b


@cuda.jit(device=True)
def _max(a, b):
    return max(a, b)


#: block_sum(value, shared): the sum of `value` over the block (blockDim.x a power of two, at
#: most len(shared)); every thread of the block must call it, and every thread gets the total
block_sum = _block_reduction(_add)
#: block_max(value, shared): the maximum of `value` over the block, same contract
block_max = _block_reduction(_max)


@cuda.jit(device=True)
def grouped_tile(pid, rows, cols, tile_rows, tile_cols, group):
    """(first row, first column) of the output tile block `pid` computes, in Triton's grouped
    order: `group` consecutive blocks walk down the tile rows of one tile column before moving
    right, so the tiles of the right-hand operand they share are reused from L2."""
    num_m = (rows + tile_rows - 1) // tile_rows
    num_n = (cols + tile_cols - 1) // tile_cols
    per_group = group * num_n
    first_m = (pid // per_group) * group
    size_m = min(num_m - first_m, group)
    return ((first_m + (pid % per_group) % size_m) * tile_rows,
            ((pid % per_group) // size_m) * tile_cols)


def row_threads(cols: int, most: int = 256) -> int:
    """Threads per block for a kernel that gives one block to each row of `cols` elements: a
    power of two, at least a warp, at most `most`, not many more than the row has elements."""
    threads = 32
    while threads < most and threads < cols:
        threads *= 2
    return threads


def row_cache_plan(cols: int, per_thread: int = 8, most_threads: int = 512,
                   most_per_thread: int = 16) -> tuple[int, int]:
    """(threads, values per thread) for a one-block-per-row kernel that keeps its row in
    registers: about `per_thread` values a thread in at most `most_threads` threads, the
    per-thread cache a power of two of at most `most_per_thread` (a compile-time size, so the
    kernel is built per cache size); columns past threads x cache are streamed."""
    threads = row_threads(-(-cols // per_thread), most_threads)
    per = 1
    while per < most_per_thread and per * threads < cols:
        per *= 2
    return threads, per


#: column_sums' block: 32 neighbouring columns (a warp's coalesced read) x 8 row lanes
SUM_COLS, SUM_LANES = 32, 8


@per_dtype
def _column_sum_kernel(T):
    # no fastmath: the additions stay in the order written
    @cuda.jit
    def sum_partials(part, out):
        """out[c] = sum_p part[p, c]: lane ty adds rows ty, ty + 8, ... in order, then lane 0
        adds the eight lane sums in order; a warp reads 32 neighbouring columns."""
        shared = cuda.shared.array((SUM_LANES, SUM_COLS), T)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        c = cuda.blockIdx.x * SUM_COLS + tx
        n, cols = part.shape
        acc = T(0)
        if c < cols:
            for p in range(ty, n, SUM_LANES):
                acc += part[p, c]
        shared[ty, tx] = acc
        cuda.syncthreads()
        if ty == 0 and c < cols:
            for lane in range(1, SUM_LANES):
                acc += shared[lane, tx]
            out[c] = acc

    return sum_partials


def column_sums(part: torch.Tensor) -> torch.Tensor:
    """The column sums of a [blocks, n] partial-sum buffer, in a fixed order (deterministic:
    how per-block partials of a cross-row reduction, such as a norm's d_weight, are finished
    without atomics)."""
    out = torch.empty(part.shape[1], device=part.device, dtype=part.dtype)
    launch(_column_sum_kernel(part.dtype), -(-part.shape[1] // SUM_COLS), (SUM_COLS, SUM_LANES),
           part, out)
    return out


def persistent_blocks(device: torch.device, rows: int, threads: int,
                      threads_per_sm: int = 1024) -> int:
    """Blocks for a grid whose blocks loop over rows: enough to fill each SM with about
    `threads_per_sm` threads; a few in the simulator; never more than the rows."""
    if device.type == "cuda":
        return max(1, min(rows, multiprocessors(device) * max(1, threads_per_sm // threads)))
    return max(1, min(rows, 4))


#: stands in for the SM count without a GPU (the simulator, compile checks): an H100's
STAND_IN_SMS = 132


@functools.cache
def multiprocessors(device: torch.device) -> int:
    """The device's SM count (read once: launchers ask on every call), STAND_IN_SMS off a GPU."""
    if device.type != "cuda":
        return STAND_IN_SMS
    return torch.cuda.get_device_properties(device).multi_processor_count


def tile_blocks(rows: int, cols: int, config: tuple) -> int:
    """Blocks covering a rows x cols output with (tile rows, tile columns, ...) tiles."""
    return -(-rows // config[0]) * -(-cols // config[1])


def tile_config(rows: int, cols: int, large: tuple, small: tuple, device: torch.device) -> tuple:
    """`large` (tile rows, tile columns, ...) once its output tiles give every SM a block, else
    `small` (more, smaller blocks)."""
    return large if tile_blocks(rows, cols, large) >= multiprocessors(device) else small
