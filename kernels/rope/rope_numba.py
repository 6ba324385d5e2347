"""numba RoPE: the (batch * heads * seq) rows in parallel (prange); each row reads its q row and
the cos/sin row of its position once and writes both output halves. Products in float64
(exact for float32 inputs), one rounding on store.

Training saves the tables only; backward is the same loop rotating the cotangent by -angle."""

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=False)
def _rope(q, cos, sin, out):
    rows, d = q.shape
    seq = cos.shape[0]
    half = d // 2
    for r in prange(rows):
        s = r % seq
        for i in range(half):
            x1 = np.float64(q[r, i])
            x2 = np.float64(q[r, i + half])
            c = np.float64(cos[s, i])
            sn = np.float64(sin[s, i])
            out[r, i] = x1 * c - x2 * sn
            out[r, i + half] = x2 * c + x1 * sn


def forward(q: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    out = np.empty_like(q)
    d = q.shape[-1]
    _rope(q.reshape(-1, d), cos, sin, out.reshape(-1, d))
    return out


@njit(parallel=True, cache=False)
def _rope_backward(g, cos, sin, dq):
    rows, d = g.shape
    seq = cos.shape[0]
    half = d // 2
    for r in prange(rows):
        s = r % seq
        for i in range(half):
            y1 = np.float64(g[r, i])
            y2 = np.float64(g[r, i + half])
            c = np.float64(cos[s, i])
            sn = np.float64(sin[s, i])
            dq[r, i] = y1 * c + y2 * sn
            dq[r, i + half] = y2 * c - y1 * sn


def forward_train(q: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> tuple[np.ndarray, tuple]:
    return forward(q, cos, sin), (cos, sin)


def backward(saved: tuple, g: np.ndarray) -> tuple[np.ndarray]:
    """The rotation by -angle applied to g, one pass (reads g and the tables, writes d_q)."""
    cos, sin = saved
    dq = np.empty_like(g)
    d = g.shape[-1]
    _rope_backward(g.reshape(-1, d), cos, sin, dq.reshape(-1, d))
    return (dq,)
