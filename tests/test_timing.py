"""Block calibration and sampling, checked with a fake clock (never against real time)."""

import numpy as np

from kernbench.timing import Measurement, calibrate_block, make_block, measure, median_settled


class FakeClock:
    """Each call of the kernel advances time by `cost`."""

    def __init__(self, cost):
        self.now = 0.0
        self.cost = cost
        self.calls = 0

    def __call__(self):
        return self.now

    def kernel(self, *args):
        self.calls += 1
        self.now += self.cost


def recording_block(copies):
    """A block over `copies` argument sets (0, 1, ...), and the list of those it was called on."""
    clock = FakeClock(1e-6)
    seen = []

    def kernel(x):
        seen.append(x)
        clock.kernel()

    return make_block(kernel, [(i,) for i in range(copies)], lambda: None, clock), seen


def test_block_divides_by_calls_and_rotates_inputs():
    block, seen = recording_block(3)
    assert abs(block(7) - 7e-6) < 1e-15
    assert seen == [0, 1, 2, 0, 1, 2, 0]


def test_rotation_continues_across_blocks():
    """Blocks of one call (large cases) still cycle through every copy: each block starts
    where the last one stopped, never back at the first copy."""
    block, seen = recording_block(3)
    for n in (1, 1, 1, 1, 2, 3):
        block(n)
    assert seen == [0, 1, 2, 0, 1, 2, 0, 1, 2]


def test_calibration_reaches_min_block():
    clock = FakeClock(3e-7)
    block = make_block(clock.kernel, [()], lambda: None, clock)
    n = calibrate_block(block, 2e-3)
    assert n * 3e-7 >= 2e-3
    assert n * 3e-7 < 2e-3 * 2.6  # not wildly over the target


def test_measure_respects_budget_and_min_samples():
    clock = FakeClock(1e-3)
    block = make_block(clock.kernel, [()], lambda: None, clock)
    m = measure(block, budget_s=0.05, min_block_s=2e-3, min_samples=5, warmup_s=0.01,
                clock=clock)
    assert len(m.samples_s) >= 5
    assert all(abs(s - 1e-3) < 1e-12 for s in m.samples_s)
    assert m.per_sample_calls * 1e-3 >= 2e-3
    # a constant kernel settles only after SETTLE_MIN_SAMPLES or the budget, whichever first
    assert len(m.samples_s) <= 30


def test_slow_kernel_gets_min_samples_even_past_budget():
    clock = FakeClock(0.5)
    block = make_block(clock.kernel, [()], lambda: None, clock)
    m = measure(block, budget_s=0.1, min_block_s=2e-3, min_samples=3, warmup_s=0.0,
                clock=clock)
    assert len(m.samples_s) == 3 and m.per_sample_calls == 1


def test_statistics_are_derived_from_samples():
    m = Measurement((1.0, 2.0, 3.0, 4.0, 100.0), 1)
    assert m.median_s == 3.0 and m.min_s == 1.0
    assert m.iqr_s == float(np.percentile(m.samples_s, 75) - np.percentile(m.samples_s, 25))
    d = m.to_dict()
    assert d["samples_s"] == [1.0, 2.0, 3.0, 4.0, 100.0] and d["n_samples"] == 5


def test_settling():
    rng = np.random.default_rng(0)
    assert not median_settled([1.0] * 10)
    assert median_settled(list(1.0 + 1e-4 * rng.standard_normal(40)))
    assert not median_settled(list(1.0 + 0.5 * rng.random(40)))


def test_input_copies_cover_twice_the_last_level_cache(monkeypatch):
    """Copies rotate through 2x the LLC (here 32 MiB), at most 64, at least 1; one copy with a
    warm cache."""
    import math

    from kernbench import worker
    from kernbench.case import CaseSettings

    monkeypatch.setattr(worker, "last_level_cache_bytes", lambda: 32 << 20)
    cold, warm = CaseSettings(), CaseSettings(warm_cache=True)
    assert worker.n_copies(1 << 10, cold) == 64  # 1 KiB: capped
    assert worker.n_copies(3 << 20, cold) == math.ceil((64 << 20) / (3 << 20)) == 22
    assert worker.n_copies(64 << 20, cold) == 1 and worker.n_copies(1 << 30, cold) == 1
    assert worker.n_copies(3 << 20, warm) == 1
