"""numba cross-entropy: rows in parallel (prange) with the per-row losses reduced into a float64
sum; per row one pass for the max and one computing exp(z - m) (in the logits' precision) into a
float64 sum, with the label-smoothing sum of (z - m) alongside. The max and the exp come from
kernbench.numba_math (a lane-wise max and a float32 exp polynomial: numba from PyPI has no SVML,
so np.exp is a scalar libm call and a max loop does not vectorise either).

Training also stores each row's log-sum-exp m + log(s) (float32 for float32 logits: 4 bytes a
row) and saves it with the logits and targets; backward recomputes softmax = exp(z - lse) row by
row in parallel, in float64, and writes (softmax - q) g / N."""

import numpy as np
from numba import njit, prange

from kernbench.numba_math import fast_exp, row_max


@njit(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy", cache=False)
def _cross_entropy_sum(z, target, ls):
    n, vocab = z.shape
    total = 0.0
    for i in prange(n):
        m = row_max(z[i])
        s = 0.0
        c = 0.0
        for j in range(vocab):
            d = z[i, j] - m
            s += fast_exp(d)
            c += d
        total += np.log(s) + (1.0 - ls) * (m - z[i, target[i]]) - ls * c / vocab
    return total


def forward(logits, target, label_smoothing):
    total = _cross_entropy_sum(logits, target, float(label_smoothing))
    return np.asarray(total / logits.shape[0], dtype=logits.dtype)


@njit(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy", cache=False)
def _cross_entropy_train(z, target, ls, lse):
    """The forward kernel's arithmetic, also storing each row's log-sum-exp."""
    n, vocab = z.shape
    total = 0.0
    for i in prange(n):
        m = row_max(z[i])
        s = 0.0
        c = 0.0
        for j in range(vocab):
            d = z[i, j] - m
            s += fast_exp(d)
            c += d
        log_s = np.log(s)
        total += log_s + (1.0 - ls) * (m - z[i, target[i]]) - ls * c / vocab
        lse[i] = m + log_s
    return total


@njit(parallel=True, fastmath={"reassoc", "contract"}, cache=False)
def _cross_entropy_backward(z, target, lse, ls, scale, d):
    n, vocab = z.shape
    off = ls / vocab
    for i in prange(n):
        m = np.float64(lse[i])
        for j in range(vocab):
            d[i, j] = (np.exp(np.float64(z[i, j]) - m) - off) * scale
        d[i, target[i]] -= (1.0 - ls) * scale


def forward_train(logits, target, label_smoothing):
    lse = np.empty(logits.shape[0], dtype=np.promote_types(logits.dtype, np.float32))
    total = _cross_entropy_train(logits, target, float(label_smoothing), lse)
    return np.asarray(total / logits.shape[0], dtype=logits.dtype), (logits, target, lse)


def backward(saved, g, label_smoothing):
    logits, target, lse = saved
    d = np.empty_like(logits)
    scale = float(np.asarray(g, dtype=np.float64)) / logits.shape[0]
    _cross_entropy_backward(logits, target, lse, float(label_smoothing), scale, d)
    return (d,)
