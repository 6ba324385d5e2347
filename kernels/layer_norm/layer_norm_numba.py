"""numba layer norm: rows in parallel (prange); per row a two-pass mean and variance with float64
accumulators (a float32 running sum loses ~sqrt(hidden) eps), then one pass writing the output.
The row is re-read from L1/L2, so the three passes cost one trip to memory. `reassoc` lets LLVM
vectorise the float64 reductions; NaN/inf semantics are kept (no `nnan`/`ninf`).

Training saves x, weight and the per-row mean and rstd (float32 for float32 inputs: 8 bytes a
row). Backward runs blocks of rows in parallel: each block writes dx for its rows and adds its
rows' g xhat and g into its own float64 row of partial sums (no shared accumulator, no race),
then the few partial rows are summed in a fixed order (deterministic) into dweight and dbias."""

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath={"reassoc", "contract"}, cache=False)
def _layer_norm(x, weight, bias, eps, out):
    rows, n = x.shape
    for i in prange(rows):
        s = 0.0
        for j in range(n):
            s += x[i, j]
        mean = s / n
        ss = 0.0
        for j in range(n):
            d = x[i, j] - mean
            ss += d * d
        rstd = 1.0 / np.sqrt(ss / n + eps)
        for j in range(n):
            out[i, j] = (x[i, j] - mean) * rstd * weight[j] + bias[j]


def forward(x, weight, bias, eps):
    out = np.empty_like(x)
    _layer_norm(x, weight, bias, float(eps), out)
    return out


@njit(parallel=True, fastmath={"reassoc", "contract"}, cache=False)
def _layer_norm_train(x, weight, bias, eps, out, mean_out, rstd_out):
    """The forward kernel's arithmetic, also storing each row's mean and rstd."""
    rows, n = x.shape
    for i in prange(rows):
        s = 0.0
        for j in range(n):
            s += x[i, j]
        mean = s / n
        ss = 0.0
        for j in range(n):
            d = x[i, j] - mean
            ss += d * d
        rstd = 1.0 / np.sqrt(ss / n + eps)
        for j in range(n):
            out[i, j] = (x[i, j] - mean) * rstd * weight[j] + bias[j]
        mean_out[i] = mean
        rstd_out[i] = rstd


#: at most this many blocks of rows in backward: the partial sums take blocks x hidden float64
MAX_BLOCKS = 64


@njit(parallel=True, fastmath={"reassoc", "contract"}, cache=False)
def _layer_norm_backward(x, weight, mean, rstd, g, dx, dw_part, db_part):
    rows, n = x.shape
    blocks = dw_part.shape[0]
    per = (rows + blocks - 1) // blocks
    for b in prange(blocks):
        for i in range(b * per, min(rows, (b + 1) * per)):
            mu = np.float64(mean[i])
            r = np.float64(rstd[i])
            s1 = 0.0
            s2 = 0.0
            for j in range(n):
                xhat = (np.float64(x[i, j]) - mu) * r
                gj = np.float64(g[i, j])
                dxhat = gj * weight[j]
                s1 += dxhat
                s2 += dxhat * xhat
                dw_part[b, j] += gj * xhat
                db_part[b, j] += gj
            s1 /= n
            s2 /= n
            for j in range(n):
                xhat = (np.float64(x[i, j]) - mu) * r
                dx[i, j] = r * (np.float64(g[i, j]) * weight[j] - s1 - xhat * s2)


def forward_train(x, weight, bias, eps):
    rows = x.shape[0]
    out = np.empty_like(x)
    mean = np.empty(rows, dtype=np.promote_types(x.dtype, np.float32))
    rstd = np.empty_like(mean)
    _layer_norm_train(x, weight, bias, float(eps), out, mean, rstd)
    return out, (x, weight, mean, rstd)


def backward(saved, g, eps):
    x, weight, mean, rstd = saved
    rows, hidden = x.shape
    blocks = max(1, min(rows, MAX_BLOCKS))
    dx = np.empty_like(x)
    dw_part = np.zeros((blocks, hidden))
    db_part = np.zeros((blocks, hidden))
    _layer_norm_backward(x, weight, mean, rstd, g, dx, dw_part, db_part)
    return (dx, dw_part.sum(axis=0).astype(weight.dtype),
            db_part.sum(axis=0).astype(weight.dtype))
