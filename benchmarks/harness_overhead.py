"""Evidence for issue 2's performance targets (run by hand, never by the tests):

1. kernbench's own overhead per timed call (a block of calls to a no-op function);
2. kernbench's median for NumPy softmax 4096x4096 float32 against `timeit`'s, same process,
   same function, interleaved rounds so machine drift affects both alike.

    .venv/bin/python benchmarks/harness_overhead.py
"""

from __future__ import annotations

import importlib.util
import statistics
import timeit
from pathlib import Path

import numpy as np

from kernbench.timing import make_block, measure, overhead_per_call

ROOT = Path(__file__).resolve().parents[1]


def load_softmax():
    spec = importlib.util.spec_from_file_location("sm", ROOT / "kernels/softmax/softmax_numpy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.forward


def main() -> None:
    overheads = [overhead_per_call() for _ in range(5)]
    print(f"harness overhead per call: median {statistics.median(overheads) * 1e9:.0f} ns "
          f"(min {min(overheads) * 1e9:.0f}, max {max(overheads) * 1e9:.0f}; 5 x 200k calls)")
    forward = load_softmax()
    x = (4 * np.random.default_rng(0).standard_normal((4096, 4096))).astype(np.float32)
    ours, theirs = [], []
    for _ in range(5):
        block = make_block(forward, [(x,)], lambda: None)
        m = measure(block, budget_s=1.0, min_block_s=2e-3, min_samples=10, warmup_s=0.1)
        ours.append(m.median_s)
        t = timeit.repeat(lambda: forward(x), number=1, repeat=40)
        theirs.append(statistics.median(t))
    k, t = statistics.median(ours), statistics.median(theirs)
    print(f"numpy softmax 4096x4096 float32: kernbench median {k * 1e3:.2f} ms "
          f"(rounds {', '.join(f'{v * 1e3:.2f}' for v in ours)}), timeit median {t * 1e3:.2f} ms "
          f"(rounds {', '.join(f'{v * 1e3:.2f}' for v in theirs)}); ratio {k / t:.3f}")


if __name__ == "__main__":
    main()
