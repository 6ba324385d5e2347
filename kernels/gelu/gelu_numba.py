"""numba GELU: rows in parallel (prange), math.erf / math.tanh per element in the input's
precision (erff/tanhf for float32, ~1 ulp: the constants are passed in as scalars of the
array's type, since Python float literals would promote everything to float64, at up to twice
the cost; this numba has no SVML, so the special functions are scalar libm calls). The form is
chosen outside the loops, so each compiled loop body is branch-free."""

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=False)
def _gelu_erf(x, out, half, one, inv_sqrt2):
    rows, cols = x.shape
    for i in prange(rows):
        for j in range(cols):
            v = x[i, j]
            out[i, j] = half * v * (one + math.erf(v * inv_sqrt2))


@njit(parallel=True, cache=False)
def _gelu_tanh(x, out, half, one, k0, k1):
    rows, cols = x.shape
    for i in prange(rows):
        for j in range(cols):
            v = x[i, j]
            out[i, j] = half * v * (one + math.tanh(k0 * (v + k1 * v * v * v)))


def forward(x: np.ndarray, *, approximate: str = "none") -> np.ndarray:
    out = np.empty_like(x)
    x2, out2 = x.reshape(x.shape[0], -1), out.reshape(out.shape[0], -1)
    t = x.dtype.type
    if approximate == "tanh":
        _gelu_tanh(x2, out2, t(0.5), t(1.0), t(math.sqrt(2.0 / math.pi)), t(0.044715))
    else:
        _gelu_erf(x2, out2, t(0.5), t(1.0), t(1.0 / math.sqrt(2.0)))
    return out
