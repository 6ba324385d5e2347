"""numba-cuda matmul: the classic register-blocked SIMT GEMM. Each block of 256 threads computes a
BM x BN tile of C, stepping over K in BK slices staged in shared memory (A transposed and padded
so its stores are bank-conflict free, B as is); each thread keeps a TM x TN micro-tile of C in
registers (constant-size local arrays whose constant-trip loops NVVM unrolls: no local memory on
sm_90), so every shared-memory value it reads feeds TN or TM multiply-adds. Its rows and columns
are strided by the thread grid (16 threads apart), which makes the shared reads conflict free (or
broadcasts) and the stores of C coalesced. Two shared buffers: the next slice is fetched from
global memory into registers while the current one is multiplied, one barrier per slice. Blocks
are ordered in GROUP_M super-rows (as Triton's kernel) so tiles of B are reused from L2. 128 x
128 tiles with 8 x 8 per thread when the grid fills the GPU, 64 x 64 with 4 x 4 otherwise; masked
loads (zeros) and stores handle sizes that are not multiples of the tiles. Accumulation in the
input precision (float32 for float32), plain IEEE multiply-adds (FMA contraction, no fastmath).

It cannot reach cuBLAS: numba has no access to the tensor cores (no TF32/wgmma, and float32
here must be IEEE anyway), to vectorised 128-bit loads or to cp.async pipelining; it is an FMA
kernel, at best a good fraction of the SIMT peak.

Backward: dA = dC B^T and dB = A^T dC run the same kernel, built with the operand layouts as
compile-time flags (an operand stored transposed), so no transposed copy is made. Shared tiles
keep the same [K slice][row or column] layout; only the global-to-shared mapping changes so a
warp still reads contiguous memory: a transposed A is read along M (stores conflict free,
no padding), a transposed B along K (8 threads a 32/64-byte segment, rows padded as A's)."""

import functools

import torch
from numba import cuda

from kernbench.cuda_launch import (
    SIMULATED,
    grouped_tile,
    launch,
    numba_type,
    tile_blocks,
    tile_config,
)

#: (BM, BN, BK, TM, TN): block tile, K slice, per-thread micro-tile; 16 x 16 = 256 threads
LARGE = (128, 128, 8, 8, 8)
SMALL = (64, 64, 8, 4, 4)
GROUP_M = 8
#: device helpers inlined by LLVM (the simulator's jit takes no `forceinline`)
INLINE = dict(device=True) if SIMULATED else dict(device=True, forceinline=True)


@functools.cache
def _kernel(T, config, trans_a=False, trans_b=False):
    """C = op(A) op(B): `trans_a` means the array passed as A is stored [K, M] (op(A) = A^T),
    `trans_b` that B is stored [N, K]."""
    BM, BN, BK, TM, TN = config
    TY, TX = BM // TM, BN // TN  # thread grid
    THREADS = TY * TX
    for v in (BM, BN, BK, TX, TY):
        assert v & (v - 1) == 0, "power-of-two tiles: indices are bit masks and shifts"
    assert THREADS % BK == 0 and THREADS % BN == 0 and (BM * BK) % THREADS == 0
    assert THREADS % BM == 0 and (BN * BK) % THREADS == 0
    TRANS_A, TRANS_B = bool(trans_a), bool(trans_b)
    A_LOADS = BM * BK // THREADS  # A slice elements per thread
    B_LOADS = BK * BN // THREADS
    # step between one thread's loads: rows of A (A as is: threads run along K) or K rows
    # (transposed: threads run along M); K rows of B (as is: along N) or columns (along K)
    A_STEP = THREADS // BM if TRANS_A else THREADS // BK
    B_STEP = THREADS // BK if TRANS_B else THREADS // BN
    TX_BITS = TX.bit_length() - 1
    BK_BITS, BN_BITS, BM_BITS = BK.bit_length() - 1, BN.bit_length() - 1, BM.bit_length() - 1
    # As[k][row] is stored with rows padded where threads run along K: thread t stores
    # As[t % BK][t // BK + ...], which hits 32 distinct banks (float32: pad 4 words; float64:
    # pad 2 elements per half-warp). Bs likewise for a transposed B.
    PAD = 4 if T.bitwidth == 32 else 2
    BMP = BM if TRANS_A else BM + PAD
    BNP = BN + PAD if TRANS_B else BN

    @cuda.jit(**INLINE)
    def fetch(a, b, ra, rb, k0, m0, n0, M, N, K, am, ak, bn, bk):
        """This thread's share of the K slice at k0 of op(A) and op(B), global -> registers
        (zeros outside the matrices)."""
        for l in range(A_LOADS):
            if TRANS_A:
                row = m0 + am
                col = k0 + ak + l * A_STEP
                ra[l] = a[col, row] if row < M and col < K else T(0)
            else:
                row = m0 + am + l * A_STEP
                col = k0 + ak
                ra[l] = a[row, col] if row < M and col < K else T(0)
        for l in range(B_LOADS):
            if TRANS_B:
                krow = k0 + bk
                col = n0 + bn + l * B_STEP
                rb[l] = b[col, krow] if krow < K and col < N else T(0)
            else:
                krow = k0 + bk + l * B_STEP
                col = n0 + bn
                rb[l] = b[krow, col] if krow < K and col < N else T(0)

    @cuda.jit(**INLINE)
    def stash(As, Bs, buf, ra, rb, am, ak, bn, bk):
        """Registers -> shared buffer `buf`, as As[k][row] and Bs[k][column]."""
        for l in range(A_LOADS):
            if TRANS_A:
                As[buf, ak + l * A_STEP, am] = ra[l]
            else:
                As[buf, ak, am + l * A_STEP] = ra[l]
        for l in range(B_LOADS):
            if TRANS_B:
                Bs[buf, bk, bn + l * B_STEP] = rb[l]
            else:
                Bs[buf, bk + l * B_STEP, bn] = rb[l]

    # Thread indices are derived with masks (`& (n - 1)`) rather than `%`/`//`: numba indexes
    # with Python semantics (negative indices wrap around), and a masked value is provably
    # non-negative, so NVVM drops the wrap-around selects and folds the micro-tile offsets into
    # the shared loads' immediates.
    @cuda.jit
    def matmul_tiled(a, b, c):
        As = cuda.shared.array((2, BK, BMP), T)
        Bs = cuda.shared.array((2, BK, BNP), T)
        acc = cuda.local.array((TM, TN), T)
        fa = cuda.local.array(TM, T)
        fb = cuda.local.array(TN, T)
        ra = cuda.local.array(A_LOADS, T)
        rb = cuda.local.array(B_LOADS, T)
        if TRANS_A:
            K, M = a.shape
        else:
            M, K = a.shape
        N = b.shape[0] if TRANS_B else b.shape[1]

        m0, n0 = grouped_tile(cuda.blockIdx.x, M, N, BM, BN, GROUP_M)

        t = cuda.threadIdx.x & (THREADS - 1)
        tx = t & (TX - 1)
        ty = (t >> TX_BITS) & (TY - 1)
        # global -> shared slots, each thread loading (am, ak + l * A_STEP) or
        # (am + l * A_STEP, ak), the fast index along the operand's contiguous dimension
        if TRANS_A:  # A rows of BM contiguous elements (a warp reads 128/256 bytes)
            am = t & (BM - 1)
            ak = (t >> BM_BITS) & (A_STEP - 1)
        else:  # A rows of BK contiguous elements (8 threads a 32/64-byte segment)
            ak = t & (BK - 1)
            am = (t >> BK_BITS) & (A_STEP - 1)
        if TRANS_B:  # B rows of BK contiguous elements
            bk = t & (BK - 1)
            bn = (t >> BK_BITS) & (B_STEP - 1)
        else:  # B rows of BN contiguous elements (a warp reads 128/256 bytes)
            bn = t & (BN - 1)
            bk = (t >> BN_BITS) & (B_STEP - 1)

        for i in range(TM):
            for j in range(TN):
                acc[i, j] = T(0)

        tiles = (K + BK - 1) // BK
        # first slice into buffer 0
        fetch(a, b, ra, rb, 0, m0, n0, M, N, K, am, ak, bn, bk)
        stash(As, Bs, 0, ra, rb, am, ak, bn, bk)
        cuda.syncthreads()

        for tile in range(tiles):
            cur = tile & 1
            more = tile + 1 < tiles
            if more:  # next slice into registers; its latency hides behind the FMAs below
                fetch(a, b, ra, rb, (tile + 1) * BK, m0, n0, M, N, K, am, ak, bn, bk)
            for k in range(BK):
                kk = k & (BK - 1)  # (provably in range: no wrap-around)
                for i in range(TM):
                    fa[i] = As[cur, kk, ty + i * TY]
                for j in range(TN):
                    fb[j] = Bs[cur, kk, tx + j * TX]
                for i in range(TM):
                    for j in range(TN):
                        acc[i, j] += fa[i] * fb[j]
            if more:  # the other buffer was last read before the previous barrier
                stash(As, Bs, cur ^ 1, ra, rb, am, ak, bn, bk)
            cuda.syncthreads()

        for i in range(TM):
            row = m0 + ty + i * TY
            if row < M:
                for j in range(TN):
                    col = n0 + tx + j * TX
                    if col < N:
                        c[row, col] = acc[i, j]

    return matmul_tiled


def choose(m: int, n: int, device: torch.device):
    """128 x 128 tiles once they give every SM a block, else 64 x 64 (4x the blocks)."""
    return tile_config(m, n, LARGE, SMALL, device)


def matmul(a, b, config, trans_a=False, trans_b=False):
    """op(A) op(B) with op the transpose where flagged: `a` stored [K, M] when `trans_a`, `b`
    stored [N, K] when `trans_b` (contiguous either way; no copy is transposed)."""
    a, b = a.contiguous(), b.contiguous()
    m = a.shape[1] if trans_a else a.shape[0]
    n = b.shape[0] if trans_b else b.shape[1]
    c = torch.empty((m, n), device=a.device, dtype=a.dtype)
    bm, bn, _, tm, tn = config
    launch(_kernel(numba_type(a.dtype), config, bool(trans_a), bool(trans_b)),
           tile_blocks(m, n, config), (bm // tm) * (bn // tn), a, b, c)
    return c


def forward(a, b):
    return matmul(a, b, choose(a.shape[0], b.shape[1], a.device))


def forward_train(a, b):
    a, b = a.contiguous(), b.contiguous()
    return forward(a, b), (a, b)


def backward(saved, g):
    """dA = G B^T ([m, k], summing over n) and dB = A^T G ([k, n], summing over m): the tiled
    kernel reading B (resp. A) in its stored layout as the transposed operand."""
    a, b = saved
    g = g.contiguous()
    m, k = a.shape
    n = b.shape[1]
    da = matmul(g, b, choose(m, k, g.device), trans_b=True)
    db = matmul(a, g, choose(k, n, g.device), trans_a=True)
    return da, db
