"""numba softmax: rows in parallel (prange), three passes over each row (max; exp and sum;
scale), the last two from cache. exp in the input's precision and the row max through
kernbench.numba_math (a vectorised polynomial for float32: numba's np.exp is a scalar libm
call; a lane-wise max: a max loop does not vectorise), the row sum accumulated in float64 (a
float32 running sum loses ~sqrt(cols) eps); `reassoc` lets the sum vectorise."""

import numpy as np
from numba import njit, prange

from kernbench.numba_math import fast_exp, row_max


@njit(parallel=True, fastmath={"reassoc", "contract"}, cache=False)
def _softmax(x, out):
    rows, cols = x.shape
    for i in prange(rows):
        m = row_max(x[i])
        s = 0.0
        for j in range(cols):
            e = fast_exp(x[i, j] - m)
            out[i, j] = e
            s += e
        inv = x.dtype.type(1.0 / s)
        for j in range(cols):
            out[i, j] = out[i, j] * inv


def forward(x):
    out = np.empty_like(x)
    _softmax(x, out)
    return out


@njit(parallel=True, cache=False)
def _softmax_backward(y, g, dx):
    rows, cols = y.shape
    for i in prange(rows):
        dot = 0.0
        for j in range(cols):
            dot += g[i, j] * y[i, j]
        for j in range(cols):
            dx[i, j] = y[i, j] * (g[i, j] - dot)


def forward_train(x):
    y = forward(x)
    return y, y


def backward(y, g):
    dx = np.empty_like(y)
    _softmax_backward(y, g, dx)
    return (dx,)
