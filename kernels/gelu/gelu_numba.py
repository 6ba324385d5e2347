"""numba GELU: rows in parallel (prange), one fused pass per form and direction, each element
in the input's precision. numba from PyPI has no SVML, so math.erf / math.tanh / math.exp are
scalar libm calls per element and a loop calling them cannot vectorise (57 and 61 ms for the
two forward forms at 1024 x 8192 float32 on 2 cores, against 2-5 ms for torch). The kernels use
kernbench.numba_math instead, whose float32 exp and erfc vectorise (float64 falls back to libm):

- exact form: gelu = 0.5 x erfc(-x / sqrt 2) (no cancellation for x < 0), and backward
  Phi(x) + x phi(x) with Phi = 0.5 erfc(-x / sqrt 2), phi = exp(-x^2 / 2) / sqrt(2 pi);
- tanh form: 0.5 (1 + tanh u) = p = 1 / (1 + exp(-2u)), so gelu = x p (no 1 + tanh u, which
  cancels for u << 0; an exp overflowing to inf gives the limit, -0), and backward
  p + 2 k0 x (1 + 3 k1 x^2) p q with q = 1 - p = 1 / (1 + exp(2u)), sech^2 u = 4 p q (no
  1 - tanh^2, which cancels in the tails).

Constants are passed in as scalars of the array's type (Python float literals would promote
float32 arithmetic to float64). Training saves x only; backward recomputes from it."""

import math

import numpy as np
from numba import njit, prange

from kernbench.numba_math import fast_erfc, fast_exp


@njit(parallel=True, fastmath={"contract"}, error_model="numpy", cache=False)
def _gelu_erf(x, out, half, neg_inv_sqrt2):
    rows, cols = x.shape
    for i in prange(rows):
        for j in range(cols):
            v = x[i, j]
            out[i, j] = half * v * fast_erfc(v * neg_inv_sqrt2)


@njit(parallel=True, fastmath={"contract"}, error_model="numpy", cache=False)
def _gelu_tanh(x, out, one, neg_two_k0, k1):
    rows, cols = x.shape
    for i in prange(rows):
        for j in range(cols):
            v = x[i, j]
            out[i, j] = v / (one + fast_exp(neg_two_k0 * v * (one + k1 * v * v)))


def forward(x: np.ndarray, *, approximate: str = "none") -> np.ndarray:
    out = np.empty_like(x)
    x2, out2 = x.reshape(x.shape[0], -1), out.reshape(out.shape[0], -1)
    t = x.dtype.type
    if approximate == "tanh":
        _gelu_tanh(x2, out2, t(1.0), t(-2.0 * math.sqrt(2.0 / math.pi)), t(0.044715))
    else:
        _gelu_erf(x2, out2, t(0.5), t(-1.0 / math.sqrt(2.0)))
    return out


@njit(parallel=True, fastmath={"contract"}, error_model="numpy", cache=False)
def _gelu_erf_backward(x, g, dx, half, neg_inv_sqrt2, inv_sqrt_2pi):
    rows, cols = x.shape
    for i in prange(rows):
        for j in range(cols):
            v = x[i, j]
            cdf = half * fast_erfc(v * neg_inv_sqrt2)
            pdf = inv_sqrt_2pi * fast_exp(-half * v * v)
            dx[i, j] = g[i, j] * (cdf + v * pdf)


@njit(parallel=True, fastmath={"contract"}, error_model="numpy", cache=False)
def _gelu_tanh_backward(x, g, dx, one, two_k0, k1, three_k1):
    rows, cols = x.shape
    for i in prange(rows):
        for j in range(cols):
            v = x[i, j]
            v2 = v * v
            w = two_k0 * v * (one + k1 * v2)  # 2u
            p = one / (one + fast_exp(-w))  # 0.5 (1 + tanh u)
            q = one / (one + fast_exp(w))  # 1 - p
            dx[i, j] = g[i, j] * (p + two_k0 * v * (one + three_k1 * v2) * p * q)


def forward_train(x: np.ndarray, *, approximate: str = "none") -> tuple[np.ndarray, np.ndarray]:
    return forward(x, approximate=approximate), x


def backward(x: np.ndarray, g: np.ndarray, *, approximate: str = "none") -> tuple[np.ndarray]:
    """d_x = g gelu'(x) from the saved x, one fused pass (reads x and g, writes d_x)."""
    dx = np.empty_like(x)
    x2, g2, dx2 = (a.reshape(a.shape[0], -1) for a in (x, g, dx))
    t = x.dtype.type
    if approximate == "tanh":
        _gelu_tanh_backward(x2, g2, dx2, t(1.0), t(2.0 * math.sqrt(2.0 / math.pi)),
                            t(0.044715), t(3.0 * 0.044715))
    else:
        _gelu_erf_backward(x2, g2, dx2, t(0.5), t(-1.0 / math.sqrt(2.0)),
                           t(1.0 / math.sqrt(2.0 * math.pi)))
    return (dx,)
