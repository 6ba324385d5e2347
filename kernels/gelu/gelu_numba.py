"""numba GELU: rows in parallel (prange), math.erf / math.tanh per element in the input's
precision (erff/tanhf for float32, ~1 ulp: the constants are passed in as scalars of the
array's type, since Python float literals would promote everything to float64, at up to twice
the cost; this numba has no SVML, so the special functions are scalar libm calls). The form is
chosen outside the loops, so each compiled loop body is branch-free.

Training saves x only. Backward is one fused pass per form: the exact form with math.erfc
(Phi(x) = 0.5 erfc(-x / sqrt 2), no cancellation for x < 0) and math.exp; the tanh form with
one exp, writing 1 + tanh u and sech^2 u through e = exp(-2|u|) (no 1 - tanh^2, which cancels
in the tails)."""

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


@njit(parallel=True, cache=False)
def _gelu_erf_backward(x, g, dx, half, neg_inv_sqrt2, inv_sqrt_2pi):
    rows, cols = x.shape
    for i in prange(rows):
        for j in range(cols):
            v = x[i, j]
            # Phi(v) = 0.5 erfc(-v / sqrt 2): no cancellation for v < 0
            cdf = half * math.erfc(v * neg_inv_sqrt2)
            pdf = inv_sqrt_2pi * math.exp(-half * v * v)
            dx[i, j] = g[i, j] * (cdf + v * pdf)


@njit(parallel=True, cache=False)
def _gelu_tanh_backward(x, g, dx, one, k0, k1, two_k0, three_k1):
    rows, cols = x.shape
    for i in prange(rows):
        for j in range(cols):
            v = x[i, j]
            v2 = v * v
            u = k0 * v * (one + k1 * v2)
            # e = exp(-2|u|), r = 1 / (1 + e): 0.5 (1 + tanh u) = r or e r, sech^2 u = 4 e r^2
            e = math.exp(-(abs(u) + abs(u)))
            r = one / (one + e)
            er = e * r
            h = r if v >= 0 else er
            dx[i, j] = g[i, j] * (h + two_k0 * v * (one + three_k1 * v2) * er * r)


def forward_train(x: np.ndarray, *, approximate: str = "none") -> tuple[np.ndarray, np.ndarray]:
    return forward(x, approximate=approximate), x


def backward(x: np.ndarray, g: np.ndarray, *, approximate: str = "none") -> tuple[np.ndarray]:
    """d_x = g gelu'(x) from the saved x, one fused pass (reads x and g, writes d_x)."""
    dx = np.empty_like(x)
    x2, g2, dx2 = (a.reshape(a.shape[0], -1) for a in (x, g, dx))
    t = x.dtype.type
    if approximate == "tanh":
        k0 = math.sqrt(2.0 / math.pi)
        _gelu_tanh_backward(x2, g2, dx2, t(1.0), t(k0), t(0.044715), t(2.0 * k0),
                            t(3.0 * 0.044715))
    else:
        _gelu_erf_backward(x2, g2, dx2, t(0.5), t(-1.0 / math.sqrt(2.0)),
                           t(1.0 / math.sqrt(2.0 * math.pi)))
    return (dx,)
