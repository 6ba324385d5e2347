"""numba SwiGLU: rows in parallel (prange), one fused pass per row (read a and b once, write
once). Computed in the input's precision, like the library ops: the constant 1 is passed in as
a scalar of the array's type, since a Python float literal would promote float32 arithmetic to
float64. exp is kernbench.numba_math's fast_exp: numba from PyPI has no SVML, so np.exp would
be a scalar libm call per element and the loop would not vectorise; the polynomial (<= 1.02
ulp) does. float32: ~1 eps.

Training saves a and b only; the fused backward recomputes sigmoid(a) and writes d_a and d_b
in one pass (reads a, b, g once)."""

import numpy as np
from numba import njit, prange

from kernbench.numba_math import fast_exp


@njit(parallel=True, error_model="numpy", cache=False)
def _swiglu(a, b, out, one):
    rows, cols = a.shape
    for i in prange(rows):
        for j in range(cols):
            x = a[i, j]
            # exp(-x) overflows to inf for very negative x: x / inf = -0, the right limit
            out[i, j] = x / (one + fast_exp(-x)) * b[i, j]


def forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty_like(a)
    _swiglu(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1),
            out.reshape(out.shape[0], -1), a.dtype.type(1.0))
    return out


@njit(parallel=True, error_model="numpy", cache=False)
def _swiglu_backward(a, b, g, da, db, one):
    rows, cols = a.shape
    for i in prange(rows):
        for j in range(cols):
            x = a[i, j]
            # e = exp(-|x|) never overflows; s and 1 - s are r and e r (or the other way
            # round): no difference is taken, so neither cancels
            e = fast_exp(-abs(x))
            r = one / (one + e)
            er = e * r
            if x >= 0:
                s, s_neg = r, er
            else:
                s, s_neg = er, r
            gi = g[i, j]
            da[i, j] = gi * b[i, j] * s * (one + x * s_neg)
            db[i, j] = gi * x * s


def forward_train(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    return forward(a, b), (a, b)


def backward(saved: tuple, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = saved
    da, db = np.empty_like(a), np.empty_like(a)
    _swiglu_backward(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1),
                     g.reshape(g.shape[0], -1), da.reshape(da.shape[0], -1),
                     db.reshape(db.shape[0], -1), a.dtype.type(1.0))
    return da, db
