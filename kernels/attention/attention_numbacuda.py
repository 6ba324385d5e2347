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
tolerance.

Backward (FlashAttention-2's schedule): forward_train has the forward kernel also write each
query's log2-sum-exp2, so P = exp2(s - lse) is recomputed tile by tile and nothing S x S is
saved. A small kernel takes Delta = rowsum(dO * O) (a warp-wide segment per row, coalesced);
then one kernel owns KB keys (K, V staged once in shared memory, dK and dV in registers) and
streams the query tiles (Q^T, dO^T, lse, Delta), and one owns QB queries (Q, dO) and streams
the key tiles for dQ: every gradient is written once by one block, so no atomics. Causal
skipping as in the forward (query tiles before a key tile's first key, key tiles past a query
tile's last row are never loaded); only diagonal tiles pay for the mask. The static 48 KB of
shared memory bounds the tiles (16 x 16 at head_dim 128 in float32; float64 at head_dim 256
does not fit and is reported unsupported)."""

import functools
import math

import torch
from numba import cuda, uint64

from kernbench.backends.base import Unsupported
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
def build(T, head_dim, causal, cfg, store_lse=False):
    """The kernel for one dtype T, head_dim, causality and tile config; `store_lse`: also
    write each query's log2-sum-exp2 of the scaled scores (for the backward)."""
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
    STORE_LSE = bool(store_lse)
    QK_SCALE = T(LOG2E / math.sqrt(D))
    NEG_T = T(NEG)
    ZERO = T(0)

    @cuda.jit(fastmath=True)
    def attention_fwd(q, k, v, out, lse):
        """q, k, v, out: [batch*heads, S, D] contiguous; lse: [batch*heads, S] (written only
        with STORE_LSE)."""
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
            if STORE_LSE and tx == 0 and q0 + row < seq:
                lse[bh, U(q0 + row)] = m[i] + math.log2(total)
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


def _forward(q, k, v, causal, lse):
    batch, heads, seq, head_dim = q.shape
    if v.shape[-1] != head_dim:
        raise ValueError("this kernel needs v's head_dim equal to q's")
    out = torch.empty_like(q)
    T = numba_type(q.dtype)
    cfg = config(head_dim, q.element_size())
    kernel, threads = build(T, head_dim, bool(causal), cfg, lse is not None)
    grid = (batch * heads, -(-seq // cfg[0]))
    flat = [x.view(batch * heads, seq, head_dim) for x in (q, k, v, out)]
    # without lse the kernel never touches its last argument: an empty one (not a view of an
    # output: the simulator copies every argument back after the kernel)
    lse = q.new_empty((0, 0)) if lse is None else lse
    launch(kernel, grid, threads, *flat, lse)
    return out


def forward(q, k, v, *, causal=False):
    q, k, v = (x.contiguous() for x in (q, k, v))
    return _forward(q, k, v, causal, None)


# --- backward --------------------------------------------------------------------------------

#: Delta kernel: threads per block
DELTA_THREADS = 128
#: (owned rows, streamed rows, owned rows per thread), best first: the first whose shared
#: memory fits and whose register tiles stay within REG_VALUES values a thread
BWD_CONFIGS = ((64, 32, 4), (32, 32, 4), (32, 32, 2), (32, 16, 2), (16, 16, 2), (16, 16, 1),
               (8, 8, 1))
#: accumulators plus score micro-tiles a thread may hold (sm_90 builds stayed spill-free)
REG_VALUES = 96


def _bwd_shared_elems(owned, streamed, head_dim, kv_owner):
    """Shared elements of a backward kernel. dK/dV: K, V [KB, D+1], Q^T, dO^T [D, QB+1], P and
    dS [KB, QB + pad], lse and Delta [QB]; dQ: Q, dO [QB, D+1], K^T, V^T [D, KB+1], dS."""
    common = 2 * owned * (head_dim + 1) + 2 * head_dim * (streamed + 1)
    if kv_owner:
        return common + 2 * owned * _p_stride(streamed) + 2 * streamed
    return common + owned * _p_stride(streamed)


def bwd_config(head_dim, itemsize, kv_owner):
    """(owned, streamed, rows per thread) of the dK/dV (`kv_owner`) or the dQ kernel."""
    rd = -(-head_dim // TX)
    for owned, streamed, rr in BWD_CONFIGS:
        held = (2 if kv_owner else 1) * rr * rd + 2 * rr * (streamed // TX)
        if (held <= REG_VALUES and _bwd_shared_elems(owned, streamed, head_dim, kv_owner)
                * itemsize <= SMEM_BYTES):
            return owned, streamed, rr
    # float64 at head_dim 256: the two streamed [D, 9] tiles alone take 36 KB
    raise Unsupported(f"the numba_cuda attention backward's tiles do not fit 48 KB of shared "
                      f"memory at head_dim {head_dim} with {itemsize}-byte elements")


@functools.cache
def build_delta(T, head_dim):
    """Delta[row] = sum_d dO[row, d] O[row, d]: TR threads (a warp for head_dim >= 32) read a
    row's contiguous elements together; a shared-memory tree within each TR-thread segment."""
    D = head_dim
    TR = 1
    while TR < 32 and TR < D:
        TR *= 2
    ROWS = DELTA_THREADS // TR
    ZERO = T(0)

    @cuda.jit(fastmath=True)
    def attention_bwd_delta(o, do, delta):
        """o, do: [rows, D]; delta: [rows]."""
        red = cuda.shared.array(DELTA_THREADS, T)
        tid = cuda.threadIdx.x
        lane = tid % TR
        row = cuda.blockIdx.x * ROWS + tid // TR
        acc = ZERO
        if row < o.shape[0]:
            for d in range(lane, D, TR):
                acc += o[U(row), U(d)] * do[U(row), U(d)]
        red[tid] = acc
        cuda.syncthreads()
        step = TR // 2
        while step > 0:
            if lane < step:
                red[tid] += red[tid + step]
            cuda.syncthreads()
            step //= 2
        if lane == 0 and row < o.shape[0]:
            delta[U(row)] = red[tid]

    return attention_bwd_delta, ROWS


@functools.cache
def build_dkdv(T, head_dim, causal, cfg):
    """The kernel that owns KB keys of one (batch, head): dK and dV over every query tile."""
    KB, QB, RK = cfg
    D = head_dim
    TY = KB // RK
    NT = TX * TY
    RN = QB // TX  # queries per thread in a score tile
    RD = -(-D // TX)  # dims per thread in dK, dV
    D_EXACT = D % TX == 0
    OS = D + 1  # K, V row stride
    SS = QB + 1  # Q^T, dO^T row stride
    PS = _p_stride(QB)
    O_ELEMS = KB * OS
    S_ELEMS = D * SS
    P_ELEMS = KB * PS
    CAUSAL = bool(causal)
    QK_SCALE = T(LOG2E / math.sqrt(D))
    SM_SCALE = T(1 / math.sqrt(D))
    ZERO = T(0)

    @cuda.jit(fastmath=True)
    def attention_bwd_dkdv(q, k, v, do, lse, delta, dk, dv):
        """q, k, v, do, dk, dv: [batch*heads, S, D]; lse, delta: [batch*heads, S]."""
        ks = cuda.shared.array(O_ELEMS, T)
        vs = cuda.shared.array(O_ELEMS, T)
        qt = cuda.shared.array(S_ELEMS, T)
        gt = cuda.shared.array(S_ELEMS, T)
        ps = cuda.shared.array(P_ELEMS, T)
        dss = cuda.shared.array(P_ELEMS, T)
        ls = cuda.shared.array(QB, T)
        dl = cuda.shared.array(QB, T)
        dka = cuda.local.array((RK, RD), T)
        dva = cuda.local.array((RK, RD), T)
        s = cuda.local.array((RK, RN), T)
        dp = cuda.local.array((RK, RN), T)
        areg = cuda.local.array(RK, T)
        breg = cuda.local.array(RK, T)
        qreg = cuda.local.array(RN, T)
        greg = cuda.local.array(RN, T)
        xreg = cuda.local.array(RD, T)
        yreg = cuda.local.array(RD, T)

        tid = cuda.threadIdx.x
        tx = tid % TX
        ty = tid // TX
        bh = U(cuda.blockIdx.x)
        k0 = cuda.blockIdx.y * KB  # the causal heaviest tiles (most queries) come first
        seq = q.shape[1]

        for i in range(tid, KB * D, NT):  # coalesced; keys past seq are zeros (never stored)
            r = i // D
            d = i - r * D
            inside = k0 + r < seq
            ks[U(r * OS + d)] = k[bh, U(k0 + r), U(d)] if inside else ZERO
            vs[U(r * OS + d)] = v[bh, U(k0 + r), U(d)] if inside else ZERO
        for i in range(RK):
            for e in range(RD):
                dka[i, e] = ZERO
                dva[i, e] = ZERO

        # causal: queries before the tile's first key see none of it
        lo = k0 - k0 % QB if CAUSAL else 0
        for q0 in range(lo, seq, QB):
            cuda.syncthreads()  # the previous tile's readers are done
            # queries past seq load as zeros (q, dO, lse, Delta): p = exp2(0) = 1 times dO = 0,
            # and dP - Delta = 0, so they add exactly nothing
            for i in range(tid, QB * D, NT):
                r = i // D
                d = i - r * D
                inside = q0 + r < seq
                qt[U(d * SS + r)] = q[bh, U(q0 + r), U(d)] if inside else ZERO
                gt[U(d * SS + r)] = do[bh, U(q0 + r), U(d)] if inside else ZERO
            for j in range(tid, QB, NT):
                inside = q0 + j < seq
                ls[j] = lse[bh, U(q0 + j)] if inside else ZERO
                dl[j] = delta[bh, U(q0 + j)] if inside else ZERO
            cuda.syncthreads()

            # S^T = K Q^T and dP^T = V dO^T for this thread's RK keys x RN queries
            for i in range(RK):
                for c in range(RN):
                    s[i, c] = ZERO
                    dp[i, c] = ZERO
            for d in range(D):
                for i in range(RK):
                    areg[i] = ks[U((ty + TY * i) * OS + d)]
                    breg[i] = vs[U((ty + TY * i) * OS + d)]
                for c in range(RN):
                    qreg[c] = qt[U(d * SS + tx + TX * c)]
                    greg[c] = gt[U(d * SS + tx + TX * c)]
                for i in range(RK):
                    for c in range(RN):
                        s[i, c] += areg[i] * qreg[c]
                        dp[i, c] += breg[i] * greg[c]

            # P^T = exp2(s - lse), dS^T = P^T (dP^T - Delta), into shared memory
            masked = CAUSAL and q0 < k0 + KB - 1
            for i in range(RK):
                row = ty + TY * i
                for c in range(RN):
                    col = tx + TX * c
                    p = math.exp2(s[i, c] * QK_SCALE - ls[col])
                    if masked and q0 + col < k0 + row:
                        p = ZERO
                    ps[U(row * PS + col)] = p
                    dss[U(row * PS + col)] = p * (dp[i, c] - dl[col])
            cuda.syncthreads()

            # dV += P^T dO, dK += dS^T Q for this thread's RK keys x RD dims
            for j in range(QB):
                for i in range(RK):
                    areg[i] = ps[U((ty + TY * i) * PS + j)]
                    breg[i] = dss[U((ty + TY * i) * PS + j)]
                for e in range(RD):
                    dim = tx + TX * e
                    if D_EXACT or dim < D:
                        xreg[e] = gt[U(dim * SS + j)]
                        yreg[e] = qt[U(dim * SS + j)]
                    else:
                        xreg[e] = ZERO
                        yreg[e] = ZERO
                for i in range(RK):
                    for e in range(RD):
                        dva[i, e] += areg[i] * xreg[e]
                        dka[i, e] += breg[i] * yreg[e]

        # 8 threads write 8 consecutive dims of a row: whole 32-byte sectors
        for i in range(RK):
            key = k0 + ty + TY * i
            if key < seq:
                for e in range(RD):
                    dim = tx + TX * e
                    if D_EXACT or dim < D:
                        dk[bh, U(key), U(dim)] = dka[i, e] * SM_SCALE
                        dv[bh, U(key), U(dim)] = dva[i, e]

    return attention_bwd_dkdv, NT


@functools.cache
def build_dq(T, head_dim, causal, cfg):
    """The kernel that owns QB queries of one (batch, head): dQ over every key tile."""
    QB, KB, RQ = cfg
    D = head_dim
    TY = QB // RQ
    NT = TX * TY
    RN = KB // TX  # keys per thread in a score tile
    RD = -(-D // TX)
    D_EXACT = D % TX == 0
    OS = D + 1  # Q, dO row stride
    SS = KB + 1  # K^T, V^T row stride
    PS = _p_stride(KB)
    O_ELEMS = QB * OS
    S_ELEMS = D * SS
    P_ELEMS = QB * PS
    CAUSAL = bool(causal)
    QK_SCALE = T(LOG2E / math.sqrt(D))
    SM_SCALE = T(1 / math.sqrt(D))
    ZERO = T(0)

    @cuda.jit(fastmath=True)
    def attention_bwd_dq(q, k, v, do, lse, delta, dq):
        """q, k, v, do, dq: [batch*heads, S, D]; lse, delta: [batch*heads, S]."""
        qs = cuda.shared.array(O_ELEMS, T)
        gs = cuda.shared.array(O_ELEMS, T)
        kt = cuda.shared.array(S_ELEMS, T)
        vt = cuda.shared.array(S_ELEMS, T)
        dss = cuda.shared.array(P_ELEMS, T)
        dqa = cuda.local.array((RQ, RD), T)
        s = cuda.local.array((RQ, RN), T)
        dp = cuda.local.array((RQ, RN), T)
        lrow = cuda.local.array(RQ, T)
        drow = cuda.local.array(RQ, T)
        areg = cuda.local.array(RQ, T)
        breg = cuda.local.array(RQ, T)
        kreg = cuda.local.array(RN, T)
        vreg = cuda.local.array(RN, T)
        xreg = cuda.local.array(RD, T)

        tid = cuda.threadIdx.x
        tx = tid % TX
        ty = tid // TX
        bh = U(cuda.blockIdx.x)
        q0 = (cuda.gridDim.y - 1 - cuda.blockIdx.y) * QB  # heaviest (causal) tiles first
        seq = q.shape[1]

        for i in range(tid, QB * D, NT):  # queries past seq: zeros (never stored)
            r = i // D
            d = i - r * D
            inside = q0 + r < seq
            qs[U(r * OS + d)] = q[bh, U(q0 + r), U(d)] if inside else ZERO
            gs[U(r * OS + d)] = do[bh, U(q0 + r), U(d)] if inside else ZERO
        for i in range(RQ):
            row = q0 + ty + TY * i
            lrow[i] = lse[bh, U(row)] if row < seq else ZERO
            drow[i] = delta[bh, U(row)] if row < seq else ZERO
            for e in range(RD):
                dqa[i, e] = ZERO

        hi = min(q0 + QB, seq) if CAUSAL else seq
        for k0 in range(0, hi, KB):
            cuda.syncthreads()  # the previous tile's readers are done
            for i in range(tid, KB * D, NT):
                j = i // D
                d = i - j * D
                inside = k0 + j < seq
                kt[U(d * SS + j)] = k[bh, U(k0 + j), U(d)] if inside else ZERO
                vt[U(d * SS + j)] = v[bh, U(k0 + j), U(d)] if inside else ZERO
            cuda.syncthreads()

            # S = Q K^T and dP = dO V^T for this thread's RQ queries x RN keys
            for i in range(RQ):
                for c in range(RN):
                    s[i, c] = ZERO
                    dp[i, c] = ZERO
            for d in range(D):
                for i in range(RQ):
                    areg[i] = qs[U((ty + TY * i) * OS + d)]
                    breg[i] = gs[U((ty + TY * i) * OS + d)]
                for c in range(RN):
                    kreg[c] = kt[U(d * SS + tx + TX * c)]
                    vreg[c] = vt[U(d * SS + tx + TX * c)]
                for i in range(RQ):
                    for c in range(RN):
                        s[i, c] += areg[i] * kreg[c]
                        dp[i, c] += breg[i] * vreg[c]

            # dS = P (dP - Delta) into shared memory; keys past seq (whose exp2 against the
            # lse of a zero key could overflow) and, causal, after the query are masked
            masked = k0 + KB > seq or (CAUSAL and k0 + KB - 1 > q0)
            for i in range(RQ):
                row = ty + TY * i
                for c in range(RN):
                    col = tx + TX * c
                    p = math.exp2(s[i, c] * QK_SCALE - lrow[i])
                    if masked:
                        key = k0 + col
                        if key >= seq or (CAUSAL and key > q0 + row):
                            p = ZERO
                    dss[U(row * PS + col)] = p * (dp[i, c] - drow[i])
            cuda.syncthreads()

            # dQ += dS K for this thread's RQ queries x RD dims
            for j in range(KB):
                for i in range(RQ):
                    areg[i] = dss[U((ty + TY * i) * PS + j)]
                for e in range(RD):
                    dim = tx + TX * e
                    if D_EXACT or dim < D:
                        xreg[e] = kt[U(dim * SS + j)]
                    else:
                        xreg[e] = ZERO
                for i in range(RQ):
                    for e in range(RD):
                        dqa[i, e] += areg[i] * xreg[e]

        for i in range(RQ):
            row = q0 + ty + TY * i
            if row < seq:
                for e in range(RD):
                    dim = tx + TX * e
                    if D_EXACT or dim < D:
                        dq[bh, U(row), U(dim)] = dqa[i, e] * SM_SCALE

    return attention_bwd_dq, NT


def forward_train(q, k, v, *, causal=False):
    """Saves what FlashAttention saves: q, k, v, the output and one log2-sum-exp2 per query
    (in the input's precision). The S x S matrix is never stored."""
    q, k, v = (x.contiguous() for x in (q, k, v))
    batch, heads, seq, head_dim = q.shape
    for owner in (True, False):  # raises Unsupported now rather than after the forward
        bwd_config(head_dim, q.element_size(), owner)
    lse = torch.empty((batch * heads, seq), device=q.device, dtype=q.dtype)
    out = _forward(q, k, v, causal, lse)
    return out, (q, k, v, out, lse)


def backward(saved, g, *, causal=False):
    """Delta = rowsum(dO * O), then the key-tile kernel (dK, dV) and the query-tile kernel
    (dQ), each recomputing P = exp2(s - lse) tile by tile."""
    q, k, v, out, lse = saved
    g = g.contiguous()
    batch, heads, seq, head_dim = q.shape
    bh = batch * heads
    T = numba_type(q.dtype)
    flat = [x.view(bh, seq, head_dim) for x in (q, k, v, g)]
    delta = torch.empty((bh, seq), device=q.device, dtype=q.dtype)
    kernel, rows = build_delta(T, head_dim)
    launch(kernel, -(-(bh * seq) // rows), DELTA_THREADS, out.view(bh * seq, head_dim),
           g.view(bh * seq, head_dim), delta.view(bh * seq))
    dq, dk, dv = (torch.empty_like(x) for x in (q, k, v))
    size = q.element_size()
    cfg = bwd_config(head_dim, size, kv_owner=True)
    kernel, threads = build_dkdv(T, head_dim, bool(causal), cfg)
    launch(kernel, (bh, -(-seq // cfg[0])), threads, *flat, lse, delta,
           dk.view(bh, seq, head_dim), dv.view(bh, seq, head_dim))
    cfg = bwd_config(head_dim, size, kv_owner=False)
    kernel, threads = build_dq(T, head_dim, bool(causal), cfg)
    launch(kernel, (bh, -(-seq // cfg[0])), threads, *flat, lse, delta,
           dq.view(bh, seq, head_dim))
    return dq, dk, dv
