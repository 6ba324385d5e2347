"""numba attention, blocked like flash attention: memory O(block x S) per thread, never S x S.

What an expert numba kernel does: the two products per query block are GEMMs, so they call
BLAS (`np.dot` inside @njit binds SciPy's), and numba fuses everything between them (the
causal mask, the row max, exp, the row sum, and in the backward dS = P (dP - Delta)) into
loops over the block's scores that vectorise: float32 exp by `numba_math.fast_exp` (numba's
np.exp is a scalar libm call) and the row max by `numba_math.row_max`. The parallel loop (prange)
runs over (batch, head, query block) in the forward and (batch, head) in the backward, where
dk and dv accumulate over query blocks; each call to BLAS from inside it is single-threaded
(`single_threaded_blas`), since a multithreaded BLAS under every prange thread oversubscribes
the cores (measured on the 2-core VM, B=1, H=8, S=2048, D=64, float32 forward: 85-103 ms with
BLAS's own threads, 46-51 ms without, see kernbench.blas_threads; the earlier hand-written
loops with float64 scores and libm exp took 262 ms).

Precision: everything accumulates in the input dtype, as BLAS does in every other backend
here: the scores, both products, and the softmax's row sums (at most S terms in [0, 1],
vectorised 16 lanes wide, so pairwise-like); the normalisation is applied to the [block, D]
output, not to the weights. The forward saves each query's log-sum-exp in the input dtype,
like FlashAttention's float32 statistic; the backward recomputes P = exp(s - lse) from it."""

import numpy as np
from numba import njit, prange

from kernbench.blas_threads import single_threaded_blas
from kernbench.numba_math import fast_exp, row_max

#: query rows per block: a [128, S] float32 score block is 1 MB at S = 2048 (cache-sized);
#: measured forward, S = 2048: 66 / 55 / 50 / 48 ms at 32 / 64 / 128 / 256 rows (causal: 33 /
#: 28 / 27 / 27 ms)
BLOCK_Q = 128


@njit(fastmath={"reassoc", "contract"}, error_model="numpy", cache=False)
def _mask_future(p, i0, causal):
    """Zero the weights of keys after each row's query (row r is query i0 + r)."""
    if causal:
        rows, kend = p.shape
        for r in range(rows):
            p[r, i0 + r + 1:kend] = 0.0


@njit(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy", cache=False)
def _attention(q, k, v, out, lse, scale, causal, block_q):
    nb, nh, s_len, _ = q.shape
    n_blocks = (s_len + block_q - 1) // block_q
    for item in prange(nb * nh * n_blocks):
        b = item // (nh * n_blocks)
        h = (item // n_blocks) % nh
        i0 = (item % n_blocks) * block_q
        i1 = min(i0 + block_q, s_len)
        kend = i1 if causal else s_len  # keys after the block's last query: never computed
        scores = np.dot(q[b, h, i0:i1] * scale, k[b, h, :kend].T)
        row_sum = np.empty(i1 - i0, dtype=q.dtype)
        for r in range(i1 - i0):
            visible = scores[r, :i0 + r + 1] if causal else scores[r]
            m = row_max(visible)
            s = q.dtype.type(0.0)
            for j in range(visible.size):
                e = fast_exp(visible[j] - m)
                visible[j] = e
                s += e
            row_sum[r] = s
            if lse.size:
                lse[b, h, i0 + r] = m + np.log(s)
        _mask_future(scores, i0, causal)
        blk = np.dot(scores, v[b, h, :kend])
        for r in range(i1 - i0):
            out[b, h, i0 + r] = blk[r] * (q.dtype.type(1.0) / row_sum[r])


@njit(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy", cache=False)
def _attention_bwd(q, k, v, g, out, lse, dq, dk, dv, scale, causal, block_q):
    nb, nh, s_len, _ = q.shape
    for item in prange(nb * nh):
        b = item // nh
        h = item % nh
        kh, vh = k[b, h], v[b, h]
        dk_acc = np.zeros_like(kh)  # owned by this (batch, head): no race
        dv_acc = np.zeros_like(vh)
        for i0 in range(0, s_len, block_q):
            i1 = min(i0 + block_q, s_len)
            kend = i1 if causal else s_len
            qs = q[b, h, i0:i1] * scale
            go = g[b, h, i0:i1]
            p = np.dot(qs, kh[:kend].T)
            dp = np.dot(go, vh[:kend].T)
            for r in range(i1 - i0):
                i = i0 + r
                m = lse[b, h, i]
                delta = q.dtype.type(0.0)  # rowsum(dO * O)
                for c in range(go.shape[1]):
                    delta += go[r, c] * out[b, h, i, c]
                last = i + 1 if causal else kend
                for j in range(last):
                    e = fast_exp(p[r, j] - m)
                    p[r, j] = e
                    dp[r, j] = e * (dp[r, j] - delta)  # dS
            _mask_future(p, i0, causal)
            _mask_future(dp, i0, causal)
            dv_acc[:kend] += np.dot(p.T, go)
            dq[b, h, i0:i1] = np.dot(dp, kh[:kend]) * scale
            dk_acc[:kend] += np.dot(dp.T, qs)
        dk[b, h] = dk_acc
        dv[b, h] = dv_acc


def _run_forward(q, k, v, causal, lse):
    q, k, v = (np.ascontiguousarray(x) for x in (q, k, v))  # np.dot wants C or F blocks
    out = np.empty(q.shape[:3] + v.shape[3:], dtype=q.dtype)
    scale = q.dtype.type(1.0 / np.sqrt(q.shape[-1]))
    with single_threaded_blas():
        _attention(q, k, v, out, lse, scale, bool(causal), BLOCK_Q)
    return out


def forward(q, k, v, *, causal=False):
    return _run_forward(q, k, v, causal, np.empty((0, 0, 0), dtype=q.dtype))


def forward_train(q, k, v, *, causal=False):
    """Saves the inputs, the output and each query's log-sum-exp (flash attention's saved
    state; the backward recomputes the softmax from it)."""
    lse = np.empty(q.shape[:3], dtype=q.dtype)
    out = _run_forward(q, k, v, causal, lse)
    return out, (q, k, v, out, lse)


def backward(saved, g, *, causal=False):
    """Per (batch, head), per query block: recompute P = exp(scale q k^T - lse), then
    dv += P^T dO, dS = P (dO v^T - rowsum(dO * O)), dq = scale dS k, dk += scale dS^T q (the
    scale is folded into the block's q). Four GEMMs and one fused elementwise pass a block; dk
    and dv accumulate in the input dtype across query blocks, as the NumPy backend's do. The
    parallelism is batch x heads, at least the cores in every suite case here."""
    q, k, v, out, lse = saved
    g = np.ascontiguousarray(g)
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    scale = q.dtype.type(1.0 / np.sqrt(q.shape[-1]))
    with single_threaded_blas():
        _attention_bwd(q, k, v, g, out, lse, dq, dk, dv, scale, bool(causal), BLOCK_Q)
    return dq, dk, dv
