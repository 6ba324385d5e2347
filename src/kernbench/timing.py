"""Steady-state timing of a zero-argument-per-call closure, in calibrated blocks.

Like torch.utils.benchmark's `blocked_autorange`: a single call of a fast kernel is too short for
the clock (perf_counter costs ~50 ns and has ~100 ns granularity), so calls are timed in blocks
of `n` whose length is grown until a block lasts at least `min_block_s`; one sample is a block's
time divided by `n`. Larger blocks make clock overhead negligible but give fewer samples within
the budget: 2 ms keeps the clock's share below 0.01% and still yields hundreds of samples a
second.

Inputs are rotated: the block calls the kernel on a precomputed cycle of input copies, so a small
problem is not timed from a cache its previous call warmed, unless the suite asks for it. The
loop's own cost per call (a list iteration and a call with `*args`) is ~0.1 µs; `overhead_per_call`
measures it.

Every sample is kept. Statistics are derived from them, never stored alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Stop early once the median is known to this relative precision (its standard error,
#: estimated from the IQR), given at least SETTLE_MIN_SAMPLES samples.
SETTLE_REL = 0.002
SETTLE_MIN_SAMPLES = 30


@dataclass(frozen=True)
class Measurement:
    """Raw samples (seconds per call) and the block length that produced them."""

    samples_s: tuple[float, ...]
    per_sample_calls: int

    @property
    def median_s(self) -> float:
        return float(np.median(self.samples_s))

    @property
    def min_s(self) -> float:
        return float(np.min(self.samples_s))

    @property
    def iqr_s(self) -> float:
        q1, q3 = np.percentile(self.samples_s, [25, 75])
        return float(q3 - q1)

    def to_dict(self) -> dict:
        return {"samples_s": list(self.samples_s), "per_sample_calls": self.per_sample_calls,
                "median_s": self.median_s, "min_s": self.min_s, "iqr_s": self.iqr_s,
                "n_samples": len(self.samples_s)}


def median_settled(samples: Sequence[float]) -> bool:
    """True when the median's standard error is below SETTLE_REL of it."""
    n = len(samples)
    if n < SETTLE_MIN_SAMPLES:
        return False
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    sigma = (q3 - q1) / 1.349  # IQR of a normal distribution is 1.349 sigma
    se_median = 1.2533 * sigma / math.sqrt(n)
    return med > 0 and se_median / med < SETTLE_REL


class Rotation:
    """Input copies handed out round robin, continuing across blocks: every call gets the
    least recently used copy. A block that restarted at the first copy would use only its
    first `n` copies; with one call a block (most large cases) every sample ran on copy 0,
    warm from the sample before, however many copies were made."""

    def __init__(self, argsets: Sequence[tuple]):
        if not argsets:
            raise ValueError("no argument sets to rotate")
        self.argsets, self.next = argsets, 0

    def take(self, n: int) -> list[tuple]:
        k, start = len(self.argsets), self.next
        self.next = (start + n) % k
        return [self.argsets[(start + i) % k] for i in range(n)]


def make_block(call: Callable, argsets: Sequence[tuple], sync: Callable[[], None],
               clock: Callable[[], float] = time.perf_counter) -> Callable[[int], float]:
    """A function timing `n` calls on the next `n` argument sets of the rotation; returns
    seconds for the block."""
    rotation = Rotation(argsets)

    def block(n: int) -> float:
        schedule = rotation.take(n)
        sync()
        t0 = clock()
        for args in schedule:
            call(*args)
        sync()
        return clock() - t0

    return block


def calibrate_block(block: Callable[[int], float], min_block_s: float,
                    max_calls: int = 1 << 24) -> int:
    """Smallest power-of-two-ish `n` whose block lasts at least `min_block_s`."""
    n = 1
    while True:
        t = block(n)
        if t >= min_block_s or n >= max_calls:
            return n
        # aim a little past the target so one more step usually suffices
        grow = min_block_s * 1.25 / max(t, 1e-9)
        n = min(max_calls, max(n * 2, int(math.ceil(n * grow))))


def measure(block: Callable[[int], float], *, budget_s: float, min_block_s: float,
            min_samples: int = 5, max_samples: int = 500, warmup_s: float = 0.05,
            clock: Callable[[], float] = time.perf_counter) -> Measurement:
    """Warm up, calibrate the block length, then sample until the budget is spent (having at
    least `min_samples`), `max_samples` is reached, or the median has settled."""
    start = clock()
    while clock() - start < warmup_s:
        block(1)
    n = calibrate_block(block, min_block_s)
    samples: list[float] = []
    start = clock()
    while len(samples) < max_samples:
        samples.append(block(n) / n)
        if len(samples) >= min_samples and (clock() - start >= budget_s
                                            or median_settled(samples)):
            break
    return Measurement(tuple(samples), n)


def overhead_per_call(calls: int = 200_000) -> float:
    """The harness's own cost per timed call: a block of calls to a no-op function."""

    def noop(*args: Any) -> None:
        return None

    block = make_block(noop, [(1,), (2,)], lambda: None)
    best = min(block(calls) for _ in range(5))
    return best / calls
