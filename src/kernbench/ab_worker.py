"""The worker side of a same-job A/B run (`kernbench ab`): `python -m kernbench.ab_worker`.

Base and head implementations of one case live in the same worker process (kernel modules are
imported under a name unique to their folder, so two versions of a kernel never collide) and are
timed in interleaved blocks of the same length, alternating A B, B A, A B, ... Each pair of
blocks is seconds apart at most, so whatever slows the machine for longer than a pair (another
tenant, frequency scaling, a slower host than yesterday's) slows both sides alike and cancels in
the pair's ratio; alternating the order cancels a linear trend within the pair and any advantage
of going first or second. Before each timed block, an untimed pass over the side's rotated input
copies restores what the other side's block displaced (caches, TLB, the allocator's free lists):
measured here, a block that directly followed the other side's ran 10% (idle machine) to 2x
(loaded) slower than one that followed its own, which made paired ratios bimodal.

The messages (JSON lines, like kernbench.worker):
  {"op": "execute", "case", "settings", "folder", "impl"} -> the usual case record (status,
      accuracy, memory, compile counters), measured by kernbench.worker.Worker.execute;
  {"op": "pair", "case", "settings", "a": {"folder", "impl"}, "b": {...}} ->
      {"a": [seconds per call...], "b": [...], "per_sample_calls": n} or {"error": "..."}.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable

import numpy as np

from . import timing
from .case import Case, CaseSettings
from .dtypes import get_format
from .worker import PreparedCase, Worker, jsonable

#: Stop early once the median paired log ratio is known to this precision (its standard
#: error): far below any gate threshold, so more pairs would not change a verdict.
PAIR_SETTLE = 0.002
#: When the budget is spent, go on (up to MAX_EXTEND budgets) until the standard error is below
#: this: a 25% change against a 10% threshold is then decided. The rule looks only at the
#: spread of the ratios, never at their value, so it does not bias the verdict the way stopping
#: on "significant" would; it spends more time only where the machine is noisy.
PAIR_TARGET = 0.02
MAX_EXTEND = 4.0
#: At least this many pairs: the signed-rank interval needs 6 for 95%, more after FDR control.
MIN_PAIRS = 12


def ratio_se(a: list[float], b: list[float]) -> float:
    """Standard error of the median of log(b/a), estimated from the IQR."""
    n = len(a)
    if n < 2:
        return math.inf
    d = np.log(np.asarray(b)) - np.log(np.asarray(a))
    q1, q3 = np.percentile(d, [25, 75])
    return 1.2533 * (q3 - q1) / 1.349 / math.sqrt(n)


def ratio_settled(a: list[float], b: list[float]) -> bool:
    """True when the median of log(b/a) has a standard error below PAIR_SETTLE."""
    if len(a) < max(MIN_PAIRS, timing.SETTLE_MIN_SAMPLES):
        return False
    return ratio_se(a, b) < PAIR_SETTLE


def interleave(block_a: Callable[[int], float], block_b: Callable[[int], float],
               settings: CaseSettings, copies: int = 1,
               clock: Callable[[], float] = time.perf_counter) -> tuple[list[float], list[float],
                                                                         int]:
    """Warm both, calibrate one block length for both (the longer of the two), then time pairs
    A B / B A alternately until the budget (twice the case's: two sides) is spent and the ratio
    is known to PAIR_TARGET (or MAX_EXTEND budgets are spent), `max_samples` pairs, or a settled
    ratio. Each timed block is preceded by an untimed pass over its `copies` input sets (at most
    a quarter of the block). Returns per-call seconds for each side, index-aligned, and the
    block length."""
    for block in (block_a, block_b):
        start = clock()
        while clock() - start < settings.warmup_s:
            block(1)
    n = max(timing.calibrate_block(block_a, settings.min_block_s),
            timing.calibrate_block(block_b, settings.min_block_s))
    pre = min(copies, n // 4)

    def timed(block: Callable[[int], float]) -> float:
        if pre:
            block(pre)
        return block(n)

    a: list[float] = []
    b: list[float] = []
    least = max(settings.min_samples, MIN_PAIRS)
    start = clock()
    while len(a) < max(settings.max_samples, least):
        if len(a) % 2 == 0:
            ta = timed(block_a)
            tb = timed(block_b)
        else:
            tb = timed(block_b)
            ta = timed(block_a)
        a.append(ta / n)
        b.append(tb / n)
        if len(a) < least:
            continue
        spent = (clock() - start) / (2 * settings.budget_s) if settings.budget_s > 0 else math.inf
        if ratio_settled(a, b) or spent >= MAX_EXTEND or (
                spent >= 1 and ratio_se(a, b) < PAIR_TARGET):
            break
    return a, b, n


def pair(worker: Worker, case: Case, settings: CaseSettings, a: dict, b: dict) -> dict:
    """Prepare both implementations of `case` and time them interleaved, with the family's own
    block (CUDA events and an L2 flush on a GPU) and input rotation, as a normal run times it."""
    if case.mode != "forward":
        raise ValueError(f"interleaved timing covers forward mode only, not {case.mode}")
    prepared: list[PreparedCase] = [worker.prepare(case, settings, side["folder"], side["impl"])
                                    for side in (a, b)]
    blocks = []
    copies = 1
    for p in prepared:
        p.first_out = None
        inputs = p.take_inputs_a()
        copies = worker._copies(p.family, case.device, p.spec, inputs,
                                get_format(case.dtype).itemsize, settings)
        argsets = [p.convert(inputs) for _ in range(copies)]
        blocks.append(p.family.make_block(p.call, argsets, case.device, settings))
    sa, sb, n = interleave(blocks[0], blocks[1], settings, copies)
    return {"a": sa, "b": sb, "per_sample_calls": n}


def main() -> None:
    """Serve execute/pair messages on stdin; the protocol is a duplicate of stdout (fd 1 goes to
    stderr, so a kernel printing cannot corrupt it), as in kernbench.worker."""
    from .lifetime import die_with_parent

    die_with_parent()
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    limit = os.environ.get("KERNBENCH_MEMORY_LIMIT")
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    worker = Worker(int(os.environ.get("KERNBENCH_THREADS", os.cpu_count() or 1)))
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        case = Case.from_dict(msg["case"])
        settings = CaseSettings(**msg["settings"])
        print(f"[kernbench worker] {msg['op']} {case.id}", file=sys.stderr, flush=True)
        if msg["op"] == "execute":
            reply = worker.execute(case, settings, msg["folder"], msg["impl"])
        else:
            try:
                reply = pair(worker, case, settings, msg["a"], msg["b"])
            except Exception as exc:  # recorded by the parent; the sweep goes on
                reply = {"error": f"{type(exc).__name__}: {exc}"[:2000],
                         "traceback": traceback.format_exc()[-4000:]}
        proto.write(json.dumps(jsonable(reply), allow_nan=False) + "\n")
        proto.flush()


if __name__ == "__main__":
    main()
