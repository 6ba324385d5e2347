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
kernel, at best a good fraction of the SIMT peak."""

import functools

import torch
from numba import cuda

from kernbench.cuda_launch import grouped_tile, launch, numba_type

#: (BM, BN, BK, TM, TN): block tile, K slice, per-thread micro-tile; 16 x 16 = 256 threads
LARGE = (128, 128, 8, 8, 8)
SMALL = (64, 64, 8, 4, 4)
GROUP_M = 8
#: stands in for the SM count when there is no GPU (the simulator, compile checks): H100's
DEFAULT_SMS = 132


@functools.cache
def _kernel(T, config):
    BM, BN, BK, TM, TN = config
    TY, TX = BM // TM, BN // TN  # thread grid
    THREADS = TY * TX
    for v in (BM, BN, BK, TX, TY):
        assert v & (v - 1) == 0, "power-of-two tiles: indices are bit masks and shifts"
    assert THREADS % BK == 0 and THREADS % BN == 0 and (BM * BK) % THREADS == 0
    A_LOADS, A_STEP = BM * BK // THREADS, THREADS // BK  # A slice elements per thread, row step
    B_LOADS, B_STEP = BK * BN // THREADS, THREADS // BN
    TX_BITS, BK_BITS, BN_BITS = TX.bit_length() - 1, BK.bit_length() - 1, BN.bit_length() - 1
    # As[k][row] is stored with rows padded: thread t stores As[t % BK][t // BK + ...], which
    # hits 32 distinct banks (float32: pad 4 words; float64: pad 2 elements per half-warp)
    BMP = BM + (4 if T.bitwidth == 32 else 2)

    # Thread indices are derived with masks (`& (n - 1)`) rather than `%`/`//`: numba indexes
    # with Python semantics (negative indices wrap around), and a masked value is provably
    # non-negative, so NVVM drops the wrap-around selects and folds the micro-tile offsets into
    # the shared loads' immediates.
    @cuda.jit
    def matmul_tiled(a, b, c):
        As = cuda.shared.array((2, BK, BMP), T)
        Bs = cuda.shared.array((2, BK, BN), T)
        acc = cuda.local.array((TM, TN), T)
        fa = cuda.local.array(TM, T)
        fb = cuda.local.array(TN, T)
        ra = cuda.local.array(A_LOADS, T)
        rb = cuda.local.array(B_LOADS, T)
        M, K = a.shape
        N = b.shape[1]

        m0, n0 = grouped_tile(cuda.blockIdx.x, M, N, BM, BN, GROUP_M)

        t = cuda.threadIdx.x & (THREADS - 1)
        tx = t & (TX - 1)
        ty = (t >> TX_BITS) & (TY - 1)
        # global -> shared slots: A rows of BK contiguous elements (8 threads a 32/64-byte
        # segment), B rows of BN contiguous elements (a warp reads 128/256 bytes)
        ak = t & (BK - 1)
        am = (t >> BK_BITS) & (A_STEP - 1)
        bn = t & (BN - 1)
        bk = (t >> BN_BITS) & (B_STEP - 1)

        for i in range(TM):
            for j in range(TN):
                acc[i, j] = T(0)

        tiles = (K + BK - 1) // BK
        # first slice straight to buffer 0
        for l in range(A_LOADS):
            row = m0 + am + l * A_STEP
            As[0, ak, am + l * A_STEP] = a[row, ak] if row < M and ak < K else T(0)
        for l in range(B_LOADS):
            col = n0 + bn
            krow = bk + l * B_STEP
            Bs[0, krow, bn] = b[krow, col] if krow < K and col < N else T(0)
        cuda.syncthreads()

        for tile in range(tiles):
            cur = tile & 1
            more = tile + 1 < tiles
            if more:  # next slice into registers; its latency hides behind the FMAs below
                k0 = (tile + 1) * BK
                for l in range(A_LOADS):
                    row = m0 + am + l * A_STEP
                    col = k0 + ak
                    ra[l] = a[row, col] if row < M and col < K else T(0)
                for l in range(B_LOADS):
                    krow = k0 + bk + l * B_STEP
                    col = n0 + bn
                    rb[l] = b[krow, col] if krow < K and col < N else T(0)
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
                for l in range(A_LOADS):
                    As[cur ^ 1, ak, am + l * A_STEP] = ra[l]
                for l in range(B_LOADS):
                    Bs[cur ^ 1, bk + l * B_STEP, bn] = rb[l]
            cuda.syncthreads()

        for i in range(TM):
            row = m0 + ty + i * TY
            if row < M:
                for j in range(TN):
                    col = n0 + tx + j * TX
                    if col < N:
                        c[row, col] = acc[i, j]

    return matmul_tiled


def _sms(device: torch.device) -> int:
    if device.type != "cuda":
        return DEFAULT_SMS
    return torch.cuda.get_device_properties(device).multi_processor_count


def _blocks(m: int, n: int, config) -> int:
    return -(-m // config[0]) * -(-n // config[1])


def choose(m: int, n: int, device: torch.device):
    """128 x 128 tiles once they give every SM a block, else 64 x 64 (4x the blocks)."""
    return LARGE if _blocks(m, n, LARGE) >= _sms(device) else SMALL


def matmul(a, b, config):
    a, b = a.contiguous(), b.contiguous()
    m, n = a.shape[0], b.shape[1]
    c = torch.empty((m, n), device=a.device, dtype=a.dtype)
    bm, bn, _, tm, tn = config
    launch(_kernel(numba_type(a.dtype), config), _blocks(m, n, config), (bm // tm) * (bn // tn),
           a, b, c)
    return c


def forward(a, b):
    return matmul(a, b, choose(a.shape[0], b.shape[1], a.device))
