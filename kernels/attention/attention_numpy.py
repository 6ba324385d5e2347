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


def _forward(q, k, v, causal, want_lse):
    out = np.empty_like(q, shape=q.shape[:3] + v.shape[3:])
    lse = np.empty_like(q, dtype=np.float32, shape=q.shape[:3]) if want_lse else None
    if q.dtype == np.float16:
        q, k, v = (x.astype(np.float32) for x in (q, k, v))
    b, h, s_len, d = q.shape
    scale = q.dtype.type(1.0 / np.sqrt(d))
    block = _block(b, h, s_len)
    future = np.triu(np.ones_like(q, dtype=bool, shape=(block, block)), k=1)
    kt = k.swapaxes(-1, -2)
    for i0 in range(0, s_len, block):
        i1 = min(i0 + block, s_len)
        kend = i1 if causal else s_len  # keys after the block's last query are all masked
        scores = np.matmul(q[:, :, i0:i1] * scale, kt[:, :, :, :kend])
        if causal:
            np.copyto(scores[:, :, :, i0:i1], -np.inf, where=future[: i1 - i0, : i1 - i0])
        row_max = scores.max(axis=-1, keepdims=True)
        scores -= row_max
        np.exp(scores, out=scores)
        denom = scores.sum(axis=-1, keepdims=True)
        blk = np.matmul(scores, v[:, :, :kend])
        blk /= denom
        out[:, :, i0:i1] = blk
        if want_lse:
            lse[:, :, i0:i1] = (row_max + np.log(denom))[..., 0]
    return out, lse


def _block(b, h, s_len):
    return int(max(16, min(s_len, SCORE_ELEMS // max(1, b * h * s_len))))


def forward(q, k, v, *, causal=False):
    return _forward(q, k, v, causal, want_lse=False)[0]


def forward_train(q, k, v, *, causal=False):
    """Saves what flash attention saves: the inputs, the output and the float32 log-sum-exp of
    each query's scores (the softmax is recomputed from it in the backward, never stored)."""
    out, lse = _forward(q, k, v, causal, want_lse=True)
    return out, (q, k, v, out, lse)


def backward(saved, g, *, causal=False):
    """Per query block, as the forward: recompute P = exp(scale q k^T - lse), then
    dv += P^T dO, dS = P * (dO v^T - rowsum(dO * O)), dq = scale dS k, dk += scale dS^T q.
    Each step is one batched BLAS call over all batches and heads; dk and dv accumulate in the
    compute dtype (float32 sums over S query blocks of BLAS-accumulated products)."""
    q, k, v, out, lse = saved
    grads_dtype = q.dtype
    if q.dtype == np.float16:
        q, k, v, out, g = (x.astype(np.float32) for x in (q, k, v, out, g))
    b, h, s_len, d = q.shape
    scale = q.dtype.type(1.0 / np.sqrt(d))
    block = _block(b, h, s_len)
    future = np.triu(np.ones_like(q, dtype=bool, shape=(block, block)), k=1)
    dq = np.empty_like(q)
    dk = np.zeros_like(k)
    dv = np.zeros_like(v)
    delta = np.einsum("bhsd,bhsd->bhs", g, out)[..., None]  # rowsum(dO * O)
    kt = k.swapaxes(-1, -2)
    vt = v.swapaxes(-1, -2)
    for i0 in range(0, s_len, block):
        i1 = min(i0 + block, s_len)
        kend = i1 if causal else s_len
        qs = q[:, :, i0:i1] * scale
        p = np.matmul(qs, kt[:, :, :, :kend])
        p -= lse[:, :, i0:i1, None]
        if causal:
            np.copyto(p[:, :, :, i0:i1], -np.inf, where=future[: i1 - i0, : i1 - i0])
        np.exp(p, out=p)
        g_blk = g[:, :, i0:i1]
        dv[:, :, :kend] += np.matmul(p.swapaxes(-1, -2), g_blk)
        ds = np.matmul(g_blk, vt[:, :, :, :kend])
        ds -= delta[:, :, i0:i1]
        ds *= p
        dq[:, :, i0:i1] = np.matmul(ds, k[:, :, :kend]) * scale
        dk[:, :, :kend] += np.matmul(ds.swapaxes(-1, -2), qs)
    return tuple(x.astype(grads_dtype, copy=False) for x in (dq, dk, dv))
