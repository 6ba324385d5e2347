"""numba attention: prange over (batch, head, query block); inside a block, two passes over
the keys with the block's scores held in a [BLOCK_Q, S] buffer (memory O(block x S) per thread,
never S x S).

Loop order is chosen for the cache: for each key row k[j] (then v[j]) the inner loops run over
the block's queries, so k[j] and v[j] are loaded once per block rather than once per query, and
the innermost loop runs over the contiguous head dimension (vectorised). Causal blocks stop at
the block's last query: fully-masked keys are never visited. Scores are length-D dot products in
the input's precision (short: float32 is accurate there); the softmax sums and the P.V
accumulators, which run over up to S keys, are float64. `reassoc` lets LLVM vectorise those
reductions (it only reorders the sums; no finite-math assumptions)."""

import numpy as np
from numba import njit, prange

BLOCK_Q = 32


@njit(parallel=True, fastmath={"reassoc", "contract"}, cache=False)
def _attention(q, k, v, out, scale, zero, causal, block_q):
    nb, nh, s_len, d = q.shape
    dv = v.shape[3]
    n_blocks = (s_len + block_q - 1) // block_q
    for item in prange(nb * nh * n_blocks):
        b = item // (nh * n_blocks)
        h = (item // n_blocks) % nh
        i0 = (item % n_blocks) * block_q
        rows = min(block_q, s_len - i0)
        kend = i0 + rows if causal else s_len
        qs = np.empty((rows, d), dtype=q.dtype)  # the block's queries, pre-scaled
        for r in range(rows):
            for c in range(d):
                qs[r, c] = q[b, h, i0 + r, c] * scale
        scores = np.empty((rows, kend), dtype=np.float64)
        for j in range(kend):
            for r in range(rows):
                acc = zero
                for c in range(d):
                    acc += qs[r, c] * k[b, h, j, c]
                scores[r, j] = acc
        row_sum = np.zeros(rows, dtype=np.float64)
        for r in range(rows):
            last = i0 + r + 1 if causal else kend
            m = scores[r, 0]
            for j in range(1, last):
                m = max(m, scores[r, j])
            s = 0.0
            for j in range(last):
                p = np.exp(scores[r, j] - m)
                scores[r, j] = p
                s += p
            for j in range(last, kend):
                scores[r, j] = 0.0
            row_sum[r] = s
        acc_o = np.zeros((rows, dv), dtype=np.float64)
        for j in range(kend):
            for r in range(rows):
                p = scores[r, j]
                for c in range(dv):
                    acc_o[r, c] += p * v[b, h, j, c]
        for r in range(rows):
            inv = 1.0 / row_sum[r]
            for c in range(dv):
                out[b, h, i0 + r, c] = acc_o[r, c] * inv


def forward(q, k, v, *, causal=False):
    out = np.empty(q.shape[:3] + v.shape[3:], dtype=q.dtype)
    scale = q.dtype.type(1.0 / np.sqrt(q.shape[-1]))
    _attention(q, k, v, out, scale, q.dtype.type(0.0), bool(causal), BLOCK_Q)
    return out
