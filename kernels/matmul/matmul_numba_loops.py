"""numba matmul without BLAS: rows of C in parallel, i-k-j loop order so the inner loop streams
rows of B and C contiguously (vectorisable), accumulating in a float64 row buffer."""

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath=True, cache=False)
def _matmul(a, b, c):
    m, k = a.shape
    n = b.shape[1]
    for i in prange(m):
        acc = np.zeros(n, dtype=np.float64)
        for p in range(k):
            aip = np.float64(a[i, p])
            for j in range(n):
                acc[j] += aip * b[p, j]
        for j in range(n):
            c[i, j] = acc[j]


def forward(a, b):
    c = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    _matmul(a, b, c)
    return c
