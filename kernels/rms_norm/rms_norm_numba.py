"""numba RMS norm: rows in parallel (prange); per row the sum of squares in a float64
accumulator, then one pass writing the output (the row is re-read from L1/L2). `reassoc` lets
LLVM vectorise the float64 reduction; NaN/inf semantics are kept.

Training saves x, weight and the per-row rstd (float32 for float32 inputs: 4 bytes a row).
Backward runs blocks of rows in parallel: each block writes dx for its rows and adds its rows'
g xhat into its own float64 row of partial sums (no shared accumulator, no race), then the few
partial rows are summed in a fixed order (deterministic) into dweight."""

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath={"reassoc", "contract"}, cache=False)
def _rms_norm(x, weight, eps, out):
    rows, n = x.shape
    for i in prange(rows):
        ss = 0.0
        for j in range(n):
            v = np.float64(x[i, j])
            ss += v * v
        rstd = 1.0 / np.sqrt(ss / n + eps)
        for j in range(n):
            out[i, j] = x[i, j] * rstd * weight[j]


def forward(x, weight, eps):
    out = np.empty_like(x)
    _rms_norm(x, weight, float(eps), out)
    return out


@njit(parallel=True, fastmath={"reassoc", "contract"}, cache=False)
def _rms_norm_train(x, weight, eps, out, rstd_out):
    """The forward kernel's arithmetic, also storing each row's rstd."""
    rows, n = x.shape
    for i in prange(rows):
        ss = 0.0
        for j in range(n):
            v = np.float64(x[i, j])
            ss += v * v
        rstd = 1.0 / np.sqrt(ss / n + eps)
        for j in range(n):
            out[i, j] = x[i, j] * rstd * weight[j]
        rstd_out[i] = rstd


#: at most this many blocks of rows in backward: the partial sums take blocks x hidden float64
MAX_BLOCKS = 64


@njit(parallel=True, fastmath={"reassoc", "contract"}, cache=False)
def _rms_norm_backward(x, weight, rstd, g, dx, dw_part):
    rows, n = x.shape
    blocks = dw_part.shape[0]
    per = (rows + blocks - 1) // blocks
    for b in prange(blocks):
        for i in range(b * per, min(rows, (b + 1) * per)):
            r = np.float64(rstd[i])
            s = 0.0
            for j in range(n):
                xhat = np.float64(x[i, j]) * r
                gj = np.float64(g[i, j])
                s += gj * weight[j] * xhat
                dw_part[b, j] += gj * xhat
            s /= n
            for j in range(n):
                dx[i, j] = r * (np.float64(g[i, j]) * weight[j] - np.float64(x[i, j]) * r * s)


def forward_train(x, weight, eps):
    out = np.empty_like(x)
    rstd = np.empty(x.shape[0], dtype=np.promote_types(x.dtype, np.float32))
    _rms_norm_train(x, weight, float(eps), out, rstd)
    return out, (x, weight, rstd)


def backward(saved, g, eps):
    x, weight, rstd = saved
    rows, hidden = x.shape
    blocks = max(1, min(rows, MAX_BLOCKS))
    dx = np.empty_like(x)
    dw_part = np.zeros((blocks, hidden))
    _rms_norm_backward(x, weight, rstd, g, dx, dw_part)
    return dx, dw_part.sum(axis=0).astype(weight.dtype)
