"""numba cross-entropy: rows in parallel (prange) with the per-row losses reduced into a float64
sum; per row one pass for the max and one computing exp(z - m) (in the logits' precision) into a
float64 sum, with the label-smoothing sum of (z - m) alongside. The max and the exp come from
kernbench.numba_math (a lane-wise max and a float32 exp polynomial: numba from PyPI has no SVML,
so np.exp is a scalar libm call and a max loop does not vectorise either).

Training also stores each row's log-sum-exp m + log(s) (float32 for float32 logits: 4 bytes a
row) and saves it with the logits and targets; backward recomputes softmax = exp(z - lse) row by
row in parallel, in the logits' precision with the same vectorised exp (as torch's float32
kernels do; a float64 np.exp per element is a scalar libm call: 56 ms against 6 ms for the
forward at 1024 x 32000), and writes (softmax - q) g / N."""

import numpy as np
from numba import njit, prange

from kernbench.numba_math import fast_exp, row_max

#: exp(z - m) and z - m are summed in the logits' dtype over blocks of this many logits (a fixed
#: trip count vectorises; a float64 accumulator per element converts every term and halves the
#: vector width), and the block sums in float64: 17.5 -> 11.8 ms on one core at 1024 x 32000
BLOCK = 512


@njit(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy", cache=False)
def _cross_entropy(z, target, ls, lse):
    """The summed loss; each row's log-sum-exp also goes to `lse` unless it is empty."""
    n, vocab = z.shape
    zero = z.dtype.type(0.0)
    total = 0.0
    for i in prange(n):
        row = z[i]
        m = row_max(row)
        s = 0.0
        c = 0.0
        n_full = vocab // BLOCK
        for b in range(n_full):
            blk = row[b * BLOCK:(b + 1) * BLOCK]
            ps = zero
            pc = zero
            for j in range(BLOCK):
                d = blk[j] - m
                ps += fast_exp(d)
                pc += d
            s += ps
            c += pc
        for j in range(n_full * BLOCK, vocab):
            d = row[j] - m
            s += fast_exp(d)
            c += d
        log_s = np.log(s)
        total += log_s + (1.0 - ls) * (m - row[target[i]]) - ls * c / vocab
        if lse.size:
            lse[i] = m + log_s
    return total


def forward(logits, target, label_smoothing):
    no_lse = np.empty(0, dtype=np.promote_types(logits.dtype, np.float32))
    total = _cross_entropy(logits, target, float(label_smoothing), no_lse)
    return np.asarray(total / logits.shape[0], dtype=logits.dtype)


@njit(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy", cache=False)
def _cross_entropy_backward(z, target, lse, ls, scale, d):
    n, vocab = z.shape
    one = z.dtype.type(1.0)
    off = z.dtype.type(ls / vocab)
    sc = z.dtype.type(scale)
    for i in prange(n):
        m = z.dtype.type(lse[i])
        row = z[i]
        dst = d[i]
        for j in range(vocab):
            dst[j] = (fast_exp(row[j] - m) - off) * sc
        dst[target[i]] -= (one - z.dtype.type(ls)) * sc


def forward_train(logits, target, label_smoothing):
    lse = np.empty(logits.shape[0], dtype=np.promote_types(logits.dtype, np.float32))
    total = _cross_entropy(logits, target, float(label_smoothing), lse)
    return np.asarray(total / logits.shape[0], dtype=logits.dtype), (logits, target, lse)


def backward(saved, g, label_smoothing):
    logits, target, lse = saved
    d = np.empty_like(logits)
    scale = float(np.asarray(g, dtype=np.float64)) / logits.shape[0]
    _cross_entropy_backward(logits, target, lse, float(label_smoothing), scale, d)
    return (d,)
