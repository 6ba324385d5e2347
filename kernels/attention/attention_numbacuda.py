"""numba-cuda flash attention, forward (FlashAttention-2's schedule on the FMA units: numba
cannot reach tensor cores, so this is a register-tiled SIMT kernel, like Triton's IEEE-float32
configs). One block per (query tile of BM rows, batch*head); the K and V tiles of BN keys are
staged in shared memory (K transposed, rows padded against bank conflicts) and the online
softmax keeps a running max and sum per query row, so the S x S matrix never exists. With
`causal`, key tiles past the query tile's last row are never loaded, and only the diagonal and
ragged tiles pay for the mask. The query tiles run heaviest first (blockIdx.y reversed).

Each thread owns RM query rows (strided by TY) x RN keys of the score tile and the same RM rows
x D/8 dims of the output accumulator: per key tile, S = Q K^T from shared memory into a
register micro-tile, per-row max through a shared [BM, 8] buffer, P = exp2(S - m) written to
shared, O = O * alpha + P V; the row sums stay per-thread partials until the end. head_dim is a
compile-time constant (a kernel is built per dtype, head_dim and causal), so the micro-tile
loops unroll and the cuda.local.array accumulators live in registers. Tile sizes are chosen per
head_dim and dtype to keep the static shared memory within 48 KB. The epilogue stages O
through shared memory for coalesced stores.

Arithmetic in the input's precision (float32 accumulators for float32), with fastmath: the
scale is folded with log2(e) and exponentials are exp2 (ex2.approx for float32, as Triton's
tl.math.exp2), the final division an approximate reciprocal; well inside the spec's
tolerance."""

import functools
import math

import torch
from numba import cuda, uint64

from kernbench.cuda_launch import launch, numba_type

LOG2E = 1.4426950408889634
SMEM_BYTES = 48 * 1024  # static shared memory per block
TX = 8  # threads across the keys of a score tile and the dims of the output tile
#: (BM query rows, BN keys, RM rows per thread), best first: the first whose shared memory fits
CONFIGS = ((64, 32, 4), (32, 32, 4), (16, 16, 2), (8, 8, 1))
#: a finite "minus infinity" (fastmath assumes no infinities)
NEG = -1.0e30
#: index cast: numba wraps negative signed indices around (a compare and select per access);
#: unsigned indices skip that
U = uint64


def _p_stride(bn):
    """Row stride of the shared P tile, 8 mod 16: the 4 rows a warp touches hit distinct banks."""
    return bn + 8 - bn % 16


def _shared_elems(bm, bn, head_dim, separate):
    """Shared elements of a config: Q [BM, D+1], K^T [D, BN+1] (V [BN, D] after it, or aliasing
    it), P [BM, BN + pad], the row-reduction buffer [BM, TX]."""
    kv = head_dim * (bn + 1) + (bn * head_dim if separate else 0)
    return bm * (head_dim + 1) + kv + bm * _p_stride(bn) + bm * TX


def config(head_dim, itemsize):
    """(BM, BN, RM, separate): the largest tiles that fit the shared memory; `separate` gives V
    its own buffer when that fits too, so K and V are loaded together (one exposed load latency
    per key tile, not two: otherwise V is loaded over K once the scores are computed)."""
    for bm, bn, rm in CONFIGS:
        for separate in (True, False):
            if _shared_elems(bm, bn, head_dim, separate) * itemsize <= SMEM_BYTES:
                return bm, bn, rm, separate
    raise ValueError(f"head_dim {head_dim} does not fit the shared memory")


@functools.cache
def build(T, head_dim, causal, cfg):
    """The kernel for one dtype T, head_dim, causality and tile config."""
    BM, BN, RM, SEPARATE = cfg
    D = head_dim
    TY = BM // RM
    NT = TX * TY  # threads per block
    RN = BN // TX  # keys per thread in a score tile
    RD = -(-D // TX)  # output dims per thread
    D_EXACT = D % TX == 0
    QS = D + 1  # Q tile row stride
    KS = BN + 1  # K^T tile row stride
    VOFF = D * KS if SEPARATE else 0  # where V starts in the K/V buffer
    KV_ELEMS = D * KS + (BN * D if SEPARATE else 0)
    PS = _p_stride(BN)
    Q_ELEMS = BM * QS  # shared array sizes must be constants, not expressions
    P_ELEMS = BM * PS
    RED_ELEMS = BM * TX
    CAUSAL = bool(causal)
    QK_SCALE = T(LOG2E / math.sqrt(D))
    NEG_T = T(NEG)
    ZERO = T(0)

    @cuda.jit(fastmath=True)
    def attention_fwd(q, k, v, out):
        """q, k, v, out: [batch*heads, S, D] contiguous."""
        qs = cuda.shared.array(Q_ELEMS, T)
        kv = cuda.shared.array(KV_ELEMS, T)
        ps = cuda.shared.array(P_ELEMS, T)
        red = cuda.shared.array(RED_ELEMS, T)
        m = cuda.local.array(RM, T)
        lsum = cuda.local.array(RM, T)
        acc = cuda.local.array((RM, RD), T)
        s = cuda.local.array((RM, RN), T)
        qreg = cuda.local.array(RM, T)
        kreg = cuda.local.array(RN, T)
        vreg = cuda.local.array(RD, T)

        tid = cuda.threadIdx.x
        tx = tid % TX
        ty = tid // TX
        bh = U(cuda.blockIdx.x)
        q0 = (cuda.gridDim.y - 1 - cuda.blockIdx.y) * BM  # heaviest (causal) tiles first
        seq = q.shape[1]

        for i in range(tid, BM * D, NT):  # coalesced: the tile is contiguous in memory
            r = i // D
            d = i - r * D
            qs[U(r * QS + d)] = q[bh, U(q0 + r), U(d)] if q0 + r < seq else ZERO
        for i in range(RM):
            m[i] = NEG_T
            lsum[i] = ZERO
            for e in range(RD):
                acc[i, e] = ZERO

        hi = min(q0 + BM, seq) if CAUSAL else seq
        for k0 in range(0, hi, BN):
            cuda.syncthreads()  # the previous tile's readers of kv and ps are done
            for i in range(tid, BN * D, NT):
                j = i // D
                d = i - j * D
                kv[U(d * KS + j)] = k[bh, U(k0 + j), U(d)] if k0 + j < seq else ZERO
                if SEPARATE:
                    kv[U(VOFF + i)] = v[bh, U(k0 + j), U(d)] if k0 + j < seq else ZERO
            cuda.syncthreads()

            # S = Q K^T for this thread's RM x RN micro-tile
            for i in range(RM):
                for c in range(RN):
                    s[i, c] = ZERO
            for d in range(D):
                for i in range(RM):
                    qreg[i] = qs[U((ty + TY * i) * QS + d)]
                for c in range(RN):
                    kreg[c] = kv[U(d * KS + tx + TX * c)]
                for i in range(RM):
                    for c in range(RN):
                        s[i, c] += qreg[i] * kreg[c]

            # scale (log2 domain), mask, and this thread's share of each row's max
            masked = k0 + BN > seq or (CAUSAL and k0 + BN - 1 > q0)
            for i in range(RM):
                row = ty + TY * i
                part = NEG_T
                for c in range(RN):
                    x = s[i, c] * QK_SCALE
                    if masked:
                        key = k0 + tx + TX * c
                        if key >= seq or (CAUSAL and key > q0 + row):
                            x = NEG_T
                    s[i, c] = x
                    part = max(part, x)
                red[U(row * TX + tx)] = part
            cuda.syncthreads()  # also: every thread is done reading K

            if not SEPARATE:  # V replaces K in the same buffer
                for i in range(tid, BN * D, NT):
                    j = i // D
                    d = i - j * D
                    kv[U(i)] = v[bh, U(k0 + j), U(d)] if k0 + j < seq else ZERO

            # online softmax: new row max, rescale, P into shared memory. Key 0 is in the first
            # tile and visible to every row, so m is finite from then on and the masked
            # scores' exp2(NEG - m) is 0.
            for i in range(RM):
                row = ty + TY * i
                m_new = m[i]
                for t in range(TX):
                    m_new = max(m_new, red[U(row * TX + t)])
                alpha = math.exp2(m[i] - m_new)
                m[i] = m_new
                psum = ZERO
                for c in range(RN):
                    p = math.exp2(s[i, c] - m_new)
                    ps[U(row * PS + tx + TX * c)] = p
                    psum += p
                lsum[i] = lsum[i] * alpha + psum
                for e in range(RD):
                    acc[i, e] *= alpha
            cuda.syncthreads()

            # O += P V for this thread's RM rows x RD dims
            for j in range(BN):
                for i in range(RM):
                    qreg[i] = ps[U((ty + TY * i) * PS + j)]
                for e in range(RD):
                    dim = tx + TX * e
                    if D_EXACT or dim < D:
                        vreg[e] = kv[U(VOFF + j * D + dim)]
                    else:
                        vreg[e] = ZERO
                for i in range(RM):
                    for e in range(RD):
                        acc[i, e] += qreg[i] * vreg[e]

        # row sums: the TX partials of each row (red was last read before the PV barrier)
        for i in range(RM):
            red[U((ty + TY * i) * TX + tx)] = lsum[i]
        cuda.syncthreads()
        for i in range(RM):
            row = ty + TY * i
            total = ZERO
            for t in range(TX):
                total += red[U(row * TX + t)]
            inv = T(1) / total
            for e in range(RD):
                dim = tx + TX * e
                if D_EXACT or dim < D:
                    qs[U(row * QS + dim)] = acc[i, e] * inv  # Q is no longer read
        cuda.syncthreads()
        for i in range(tid, BM * D, NT):
            r = i // D
            d = i - r * D
            if q0 + r < seq:
                out[bh, U(q0 + r), U(d)] = qs[U(r * QS + d)]

    return attention_fwd, NT


def forward(q, k, v, *, causal=False):
    q, k, v = (x.contiguous() for x in (q, k, v))
    batch, heads, seq, head_dim = q.shape
    if v.shape[-1] != head_dim:
        raise ValueError("this kernel needs v's head_dim equal to q's")
    out = torch.empty_like(q)
    T = numba_type(q.dtype)
    cfg = config(head_dim, q.element_size())
    kernel, threads = build(T, head_dim, bool(causal), cfg)
    grid = (batch * heads, -(-seq // cfg[0]))
    flat = (x.view(batch * heads, seq, head_dim) for x in (q, k, v, out))
    launch(kernel, grid, threads, *flat)
    return out
