"""numba squared distances by the definition: rows of x in parallel (prange), for each pair
sum_k (x_ik - y_jk)^2 with the differences and the sum in float64 (exact differences for
float32 inputs, so no cancellation whatever the offset). O(n m d) scalar work, where the GEMM
form would be one BLAS call: the accurate choice, not the fast one. fastmath reassociation
only lets LLVM vectorise the float64 sum over k."""

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath={"reassoc", "contract"}, cache=False)
def _sqdist(x, y, out):
    n, d = x.shape
    m = y.shape[0]
    for i in prange(n):
        for j in range(m):
            acc = 0.0
            for k in range(d):
                t = np.float64(x[i, k]) - np.float64(y[j, k])
                acc += t * t
            out[i, j] = acc


def forward(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty((x.shape[0], y.shape[0]), dtype=x.dtype)
    _sqdist(x, y, out)
    return out
