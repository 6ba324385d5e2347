"""numba focal loss: rows in parallel (prange), each element in the logits' precision (float32;
float64 for float64 inputs, as the spec says backends compute) with the stable form:
z = (1 - 2t) x, e = exp(-|z|), l = log1p(e), softplus(z) = max(z, 0) + l,
1 - p_t = sigmoid(z) = (1 or e) / (1 + e), and for gamma != 2 the power as
sigmoid(z)^gamma = exp(-gamma softplus(-z)) = exp(-gamma (max(-z, 0) + l)), so no pow call
(gamma = 2, the paper's default, squares: a separate compiled loop, `square`). Each row (one
anchor's classes, 80 positive terms) is summed in the input dtype, vectorised, and the row sums
in float64: a float64 accumulator inside the row loop converts every term and halves the vector
width (measured on one core at 65536 x 80: 5.9 ms vs 3.1 ms).

exp and log1p come from kernbench.numba_math: numba from PyPI has no SVML, so np.exp and
np.log1p are scalar libm calls per element and the loop cannot vectorise; the polynomials
(float32: <= 1.02 and 1.84 ulp) can, with error_model="numpy" (no zero-divisor branch). For
float64 they are libm. The element's arithmetic is written out in each loop: moved into a
helper returning a tuple, the loop stopped vectorising (10x slower).

Training saves only the inputs; backward recomputes e per element (rows in parallel) and writes
(1 - 2t) alpha_t s^gamma (gamma p_t ce + s) g / count with s = sigmoid(z) = 1 - p_t and
ce = softplus(z)."""

import numpy as np
from numba import njit, prange

from kernbench.numba_math import fast_exp, fast_log1p_unit


@njit(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy", cache=False)
def _focal_sum(x, t, alpha, gamma, square):
    rows, cols = x.shape
    zero, one = x.dtype.type(0.0), x.dtype.type(1.0)
    a, gm = x.dtype.type(alpha), x.dtype.type(gamma)
    total = 0.0
    for i in prange(rows):
        row = zero  # one row's terms (classes of one anchor) in the input dtype, then float64
        for j in range(cols):
            positive = t[i, j] > 0.5
            z = -x[i, j] if positive else x[i, j]
            e = fast_exp(-abs(z))
            lg = fast_log1p_unit(e)
            ce = max(z, zero) + lg
            if square:
                inv = one / (one + e)
                s = inv if z >= zero else e * inv
                mod = s * s
            else:
                mod = fast_exp(-gm * (max(-z, zero) + lg))
            alpha_t = a if positive else one - a
            row += alpha_t * mod * ce
        total += row
    return total


def forward(logits, targets, alpha, gamma):
    total = _focal_sum(logits, targets, float(alpha), float(gamma), gamma == 2.0)
    return np.asarray(total / logits.size, dtype=logits.dtype)


@njit(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy", cache=False)
def _focal_backward(x, t, alpha, gamma, scale, square, d):
    rows, cols = x.shape
    zero, one = x.dtype.type(0.0), x.dtype.type(1.0)
    a, gm, sc = x.dtype.type(alpha), x.dtype.type(gamma), x.dtype.type(scale)
    for i in prange(rows):
        for j in range(cols):
            positive = t[i, j] > 0.5
            z = -x[i, j] if positive else x[i, j]
            e = fast_exp(-abs(z))
            lg = fast_log1p_unit(e)
            ce = max(z, zero) + lg
            inv = one / (one + e)
            s = inv if z >= zero else e * inv
            p_t = e * inv if z >= zero else inv
            if square:
                mod = s * s
            else:
                mod = fast_exp(-gm * (max(-z, zero) + lg))
            alpha_t = a if positive else one - a
            grad = alpha_t * mod * (gm * p_t * ce + s) * sc
            d[i, j] = -grad if positive else grad


def forward_train(logits, targets, alpha, gamma):
    """Backward needs nothing beyond the inputs."""
    return forward(logits, targets, alpha, gamma), (logits, targets)


def backward(saved, g, alpha, gamma):
    logits, targets = saved
    d = np.empty_like(logits)
    scale = float(np.asarray(g, dtype=np.float64)) / logits.size
    _focal_backward(logits, targets, float(alpha), float(gamma), scale, gamma == 2.0, d)
    return (d,)
