"""Timing on a GPU the way GPU people time it.

- Device time, not host time: a CUDA event is recorded on the stream before and after each
  call, and their difference is read after one synchronisation at the end of the block, so the
  host's launch overhead and Python's loop are not counted (they overlap with the GPU's work).
- A head start for the host: after the flush, a short spin kernel (`head_start`, ~100 us) holds
  the stream while the host enqueues the start event and the call. Without it the host's lead
  is the flush (~33 us on an H100) at a block's first call, and at later calls whatever the
  GPU's work per call (flush + kernel) has over the host's launch path: a short kernel behind a
  slow launcher (numba-cuda's: tens of us) leaves the GPU idle after each start event, and that
  host time reads as device time. Gaps *between* a call's own kernels (eager code) are still
  counted: that is what eager execution costs on the GPU's timeline.
- A cold L2 for every call: before each call, outside the events, a buffer larger than the L2 is
  zeroed, so a problem smaller than the L2 is not timed from a cache its previous call warmed
  (Triton's do_bench does the same).
- Launch-bound kernels: with `cuda_graph`, the block's calls are captured once into a CUDA graph
  and the replay is timed, removing per-launch CPU overhead (what torch.compile's
  "reduce-overhead" mode does in production).
- Clocks: a GPU idles at a low clock and ramps up under load; timing starts only once the
  per-call time of consecutive warm-up blocks agrees within `SETTLE_TOLERANCE`.

Everything takes its events, synchronisation and flush as arguments, so the logic is tested on a
CPU with fakes; the adapters (torch, CuPy, JAX) supply the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .timing import Rotation

SETTLE_TOLERANCE = 0.02
SETTLE_MAX_S = 3.0
FLUSH_FACTOR = 2  # the flush buffer is this many times the L2 size
#: the head start's spin: ~100 us at an H100's 1.98 GHz boost clock
HEAD_START_CYCLES = 200_000
#: the spin for frameworks without one (CuPy; torch has `torch.cuda._sleep`): one thread reads
#: the SM's cycle counter until `cycles` have passed. clock64() is volatile, so the loop stays.
SPIN_KERNEL_NAME = "kernbench_spin"
SPIN_KERNEL_SOURCE = r"""
extern "C" __global__ void kernbench_spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""


class Event(Protocol):
    def record(self) -> None: ...

    def elapsed_time(self, end: Any) -> float:  # milliseconds, as torch.cuda.Event
        ...


def make_event_block(call: Callable, argsets: Sequence[tuple], *, new_event: Callable[[], Event],
                     synchronize: Callable[[], None],
                     flush: Callable[[], None] | None = None,
                     head_start: Callable[[], None] | None = None) -> Callable[[int], float]:
    """A block of `n` calls, each between its own pair of events, an L2 flush and a head start
    before each (both outside the events); the block's time is the sum of the calls' device
    times (seconds)."""

    rotation = Rotation(argsets)

    def block(n: int) -> float:
        pairs = []
        synchronize()
        for args in rotation.take(n):
            if flush is not None:
                flush()
            if head_start is not None:
                head_start()
            start, end = new_event(), new_event()
            start.record()
            call(*args)
            end.record()
            pairs.append((start, end))
        synchronize()
        return sum(s.elapsed_time(e) for s, e in pairs) / 1e3

    return block


def make_graph_block(call: Callable, argsets: Sequence[tuple], *, capture: Callable,
                     new_event: Callable[[], Event],
                     synchronize: Callable[[], None]) -> Callable[[int], float]:
    """A block of `n` calls captured into one CUDA graph (once per `n`), timed by replay.
    `capture(fn)` returns a replay function for a graph recording `fn()`."""
    graphs: dict[int, Callable[[], None]] = {}

    def block(n: int) -> float:
        if n not in graphs:
            k = len(argsets)

            def body() -> None:
                for i in range(n):
                    call(*argsets[i % k])

            synchronize()
            graphs[n] = capture(body)
        replay = graphs[n]
        synchronize()
        start, end = new_event(), new_event()
        start.record()
        replay()
        end.record()
        synchronize()
        return start.elapsed_time(end) / 1e3

    return block


def warm_until_settled(block: Callable[[int], float], *, min_s: float, calls: int = 5,
                       tolerance: float = SETTLE_TOLERANCE, max_s: float = SETTLE_MAX_S,
                       clock: Callable[[], float] = time.perf_counter) -> bool:
    """Run blocks for at least `min_s`, then until two consecutive per-call times agree within
    `tolerance` (the clocks have ramped up), at most `max_s`. Returns whether it settled."""
    start = clock()
    previous = None
    while True:
        current = block(calls) / calls
        elapsed = clock() - start
        if elapsed >= min_s and previous is not None and previous > 0:
            if abs(current - previous) / previous <= tolerance:
                return True
        if elapsed >= max_s:
            return False
        previous = current


class PerfCounterEvent:
    """An 'event' for frameworks without device events (JAX): the host clock after a
    synchronisation. Only honest when the call itself blocks until its result is ready."""

    def __init__(self, synchronize: Callable[[], None]):
        self._sync = synchronize
        self.t = 0.0

    def record(self) -> None:
        self._sync()
        self.t = time.perf_counter()

    def elapsed_time(self, end: PerfCounterEvent) -> float:
        return (end.t - self.t) * 1e3
