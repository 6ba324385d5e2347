"""numba layer norm: rows in parallel (prange); per row a two-pass mean and variance with float64
accumulators (a float32 running sum loses ~sqrt(hidden) eps), then one pass writing the output.
The row is re-read from L1/L2, so the three passes cost one trip to memory. `reassoc` lets LLVM
vectorise the float64 reductions; NaN/inf semantics are kept (no `nnan`/`ninf`)."""

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath={"reassoc", "contract"}, cache=False)
def _layer_norm(x, weight, bias, eps, out):
    rows, n = x.shape
    for i in prange(rows):
        s = 0.0
        for j in range(n):
            s += x[i, j]
        mean = s / n
        ss = 0.0
        for j in range(n):
            d = x[i, j] - mean
            ss += d * d
        rstd = 1.0 / np.sqrt(ss / n + eps)
        for j in range(n):
            out[i, j] = (x[i, j] - mean) * rstd * weight[j] + bias[j]


def forward(x, weight, bias, eps):
    out = np.empty_like(x)
    _layer_norm(x, weight, bias, float(eps), out)
    return out
