"""NumPy attention, blocked over queries so memory stays O(block x S), never S x S.

For each block of query rows (all batches and heads at once, so each step is one batched BLAS
call): scores = (q_blk * scale) @ k^T, the causal mask on the diagonal tile only (keys past the
block's last query are not computed at all), an in-place softmax whose normalisation is applied
to the [block, D] output rather than the [block, S] weights, then weights @ v. The block height
keeps the score buffer near 2**20 elements (a few MB: cache-sized). float16 inputs are computed
in float32 (NumPy's float16 matmul is not BLAS and accumulates in half precision). Arrays are
created with the `_like` functions, so the same code runs on CuPy arrays (the cupy backend)."""

import numpy as np

SCORE_ELEMS = 1 << 20


def forward(q, k, v, *, causal=False):
    out = np.empty_like(q, shape=q.shape[:3] + v.shape[3:])
    if q.dtype == np.float16:
        q, k, v = (x.astype(np.float32) for x in (q, k, v))
    b, h, s_len, d = q.shape
    scale = q.dtype.type(1.0 / np.sqrt(d))
    block = int(max(16, min(s_len, SCORE_ELEMS // max(1, b * h * s_len))))
    future = np.triu(np.ones_like(q, dtype=bool, shape=(block, block)), k=1)
    kt = k.swapaxes(-1, -2)
    for i0 in range(0, s_len, block):
        i1 = min(i0 + block, s_len)
        kend = i1 if causal else s_len  # keys after the block's last query are all masked
        scores = np.matmul(q[:, :, i0:i1] * scale, kt[:, :, :, :kend])
        if causal:
            np.copyto(scores[:, :, :, i0:i1], -np.inf, where=future[: i1 - i0, : i1 - i0])
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        denom = scores.sum(axis=-1, keepdims=True)
        blk = np.matmul(scores, v[:, :, :kend])
        blk /= denom
        out[:, :, i0:i1] = blk
    return out
