"""numba-cuda selective scan, forward: one thread per (batch, channel) walks the sequence with
its dstate-sized state in registers (a cuda.local.array of the compile-time dstate: a kernel
is built per dtype, dstate, gate and softplus), the recurrence exactly as written,
x = exp(dt A) x + dt u B, never as exp of differences of cumulative sums. A block owns BD = 32
channels of one batch element and walks L in chunks of LC steps: per chunk the [BD, LC] tiles
of u, delta (and z) and the [N, LC] tiles of B and C (shared by every channel of the batch
element) are loaded coalesced along L into shared memory (rows padded against bank
conflicts), each thread runs its channel through the chunk reading B_t and C_t as broadcasts,
writes y over its u row, and the tile is stored coalesced. Each input is read once and the
output written once.

Arithmetic in the input's precision (float32 state for float32, like Triton's kernel and
mamba_ssm's), with fastmath: decays are exp2(dt * A log2(e)) (ex2.approx for float32, as
Triton's tl.math.exp2), softplus is log1p(exp(dt)) with libdevice's exact log1p (the plain
log(1 + exp) loses bits of dt ~ 1e-3, see spec.py), the gate z / (1 + exp(-z)).

Backward: forward_train also writes the state entering every LC-step chunk (N / LC of u's
size: LC = 16 at N = 16 in float32); the backward keeps the forward's layout (a thread per
(batch, channel), a block per 32 channels) and walks the chunks last to first: it recomputes the
chunk's states from the checkpoint into shared memory (the forward's arithmetic), then runs
the adjoint lam_t = C_t dy_t + exp(dt_{t+1} A) lam_{t+1} backwards with lam carried in
registers across chunks; du, d delta, dz are written per element, dA, dD, d delta_bias summed
per thread. dC and dB (sums over channels) are taken per chunk by the block in a fixed order
from the shared states (x_t dy_t, then lam_t dt_t u_t written over x_t) into per-block
partials, and a small kernel sums the partials over blocks (and dA, dD, d delta_bias over
batch) in order: deterministic, no atomics. Exponentials are recomputed, not stored."""

import functools
import math

import torch
from numba import cuda, uint64

from kernbench.backends.base import Unsupported
from kernbench.cuda_launch import launch, numba_type, per_dtype

LOG2E = 1.4426950408889634
SMEM_BYTES = 48 * 1024  # static shared memory per block
BD = 32  # channels (threads) per block: one warp
#: index cast: numba wraps negative signed indices around (a compare and select per access);
#: unsigned indices skip that
U = uint64


def chunk(dstate, itemsize):
    """Steps per chunk: the largest power of two up to 32 whose tiles (u, delta, z: [BD, LC+1];
    B, C: [N, LC+1]) fit the shared memory."""
    lc = 32
    while lc > 1 and (3 * BD + 2 * dstate) * (lc + 1) * itemsize > SMEM_BYTES:
        lc //= 2
    return lc


@functools.cache
def build(T, dstate, gate, delta_softplus, lc, save=False, ck=1):
    """The kernel for one dtype T, dstate, gate/softplus flags and chunk length; `save`: also
    write the state entering every `ck` steps (the backward's checkpoints)."""
    N = dstate
    LC = lc
    LS = LC + 1  # padded tile row stride
    TILE = BD * LS
    Z_TILE = TILE if gate else 1
    BC_TILE = N * LS
    NACC = min(4, N)  # partial sums of <C_t, x_t>: a dependency chain of N/4 FMAs, not N
    GATE = bool(gate)
    SOFTPLUS = bool(delta_softplus)
    ZERO = T(0)
    ONE = T(1)
    LOG2E_T = T(LOG2E)
    SOFTPLUS_LINEAR = T(20)  # softplus(x) == x in float32/64 past this
    SAVE = bool(save)
    CK = ck

    @cuda.jit(fastmath=True)
    def selective_scan_fwd(u, delta, A, Bm, Cm, Dskip, z, bias, out, starts):
        """u, delta, z, out: [batch, dim, L]; A: [dim, N]; Bm, Cm: [batch, N, L]; Dskip,
        bias: [dim]; all contiguous. starts: [batch, dim, L / CK, N], written with SAVE."""
        us = cuda.shared.array(TILE, T)
        ds = cuda.shared.array(TILE, T)
        zs = cuda.shared.array(Z_TILE, T)
        bs = cuda.shared.array(BC_TILE, T)
        cs = cuda.shared.array(BC_TILE, T)
        x = cuda.local.array(N, T)
        a2 = cuda.local.array(N, T)
        yacc = cuda.local.array(NACC, T)

        tid = cuda.threadIdx.x
        nd = u.shape[1]
        seqlen = u.shape[2]
        blocks_d = (nd + BD - 1) // BD
        b = cuda.blockIdx.x // blocks_d
        d0 = (cuda.blockIdx.x - b * blocks_d) * BD
        d = d0 + tid
        active = d < nd
        for n in range(N):
            a2[n] = A[U(d), U(n)] * LOG2E_T if active else ZERO
            x[n] = ZERO
        skip = Dskip[U(d)] if active else ZERO
        dt_bias = bias[U(d)] if active else ZERO
        row = tid * LS

        for l0 in range(0, seqlen, LC):
            cuda.syncthreads()  # the previous chunk's tile is stored
            for i in range(tid, BD * LC, BD):  # a warp reads LC consecutive steps of a row
                r = i // LC
                t = i - r * LC
                ok = d0 + r < nd and l0 + t < seqlen
                k = U(r * LS + t)
                us[k] = u[U(b), U(d0 + r), U(l0 + t)] if ok else ZERO
                ds[k] = delta[U(b), U(d0 + r), U(l0 + t)] if ok else ZERO
                if GATE:
                    zs[k] = z[U(b), U(d0 + r), U(l0 + t)] if ok else ZERO
            for i in range(tid, N * LC, BD):
                n = i // LC
                t = i - n * LC
                ok = l0 + t < seqlen
                k = U(n * LS + t)
                bs[k] = Bm[U(b), U(n), U(l0 + t)] if ok else ZERO
                cs[k] = Cm[U(b), U(n), U(l0 + t)] if ok else ZERO
            cuda.syncthreads()

            if active:
                for t in range(min(LC, seqlen - l0)):
                    if SAVE and (l0 + t) % CK == 0:
                        for n in range(N):
                            starts[U(b), U(d), U((l0 + t) // CK), U(n)] = x[n]
                    ut = us[U(row + t)]
                    dt = ds[U(row + t)] + dt_bias
                    if SOFTPLUS and dt <= SOFTPLUS_LINEAR:
                        dt = math.log1p(math.exp(dt))
                    dtu = dt * ut
                    for j in range(NACC):
                        yacc[j] = ZERO
                    for n in range(N):
                        x[n] = math.exp2(dt * a2[n]) * x[n] + dtu * bs[U(n * LS + t)]
                        yacc[n % NACC] += x[n] * cs[U(n * LS + t)]
                    y = skip * ut
                    for j in range(NACC):
                        y += yacc[j]
                    if GATE:
                        zt = zs[U(row + t)]
                        y *= zt / (ONE + math.exp(-zt))
                    us[U(row + t)] = y  # this thread's own row: no barrier needed
            cuda.syncthreads()

            for i in range(tid, BD * LC, BD):
                r = i // LC
                t = i - r * LC
                if d0 + r < nd and l0 + t < seqlen:
                    out[U(b), U(d0 + r), U(l0 + t)] = us[U(r * LS + t)]

    return selective_scan_fwd


def _forward(u, delta, A, B, C, D, z, delta_bias, gate, delta_softplus, starts, ck):
    nb, nd, _ = u.shape
    dstate = A.shape[1]
    out = torch.empty_like(u)
    T = numba_type(u.dtype)
    kernel = build(T, dstate, bool(gate), bool(delta_softplus),
                   chunk(dstate, u.element_size()), starts is not None, ck)
    grid = nb * (-(-nd // BD))  # (batch, channel block) flattened: grid x has no 65535 limit
    # without checkpoints the kernel never touches `starts`: an empty array (not a view of an
    # output: the simulator copies every argument back after the kernel)
    starts = u.new_empty((0, 0, 0, 0)) if starts is None else starts
    launch(kernel, grid, BD, u, delta, A, B, C, D, z, delta_bias, out, starts)
    return out


def forward(u, delta, A, B, C, D, z, delta_bias, *, gate=True, delta_softplus=True):
    u, delta, A, B, C, D, z, delta_bias = (
        x.contiguous() for x in (u, delta, A, B, C, D, z, delta_bias))
    return _forward(u, delta, A, B, C, D, z, delta_bias, gate, delta_softplus, None, 1)


# --- backward --------------------------------------------------------------------------------

#: threads of the final reduction kernel
REDUCE_THREADS = 256


def bwd_chunk(dstate, itemsize):
    """Steps per backward chunk (and between saved states): the largest power of two up to 32
    whose tiles (u, delta, z, dO: [BD, LC+1]; B, C: [N, LC+1]) and per-thread chunk states
    ([BD, N LC + 1]) fit the shared memory."""
    def elems(lc):
        return (4 * BD + 2 * dstate) * (lc + 1) + BD * (dstate * lc + 1)

    lc = 32
    while lc > 1 and elems(lc) * itemsize > SMEM_BYTES:
        lc //= 2
    if elems(1) * itemsize > SMEM_BYTES:
        raise Unsupported(f"the numba_cuda selective_scan backward's chunk does not fit 48 KB "
                          f"of shared memory at dstate {dstate} with {itemsize}-byte elements")
    return lc


@functools.cache
def build_bwd(T, dstate, gate, delta_softplus, lc):
    """The backward kernel for one dtype T, dstate, gate/softplus flags and chunk length."""
    N = dstate
    LC = lc
    LS = LC + 1
    TILE = BD * LS
    Z_TILE = TILE if gate else 1
    BC_TILE = N * LS
    XS = N * LC + 1  # a thread's chunk states [N][LC], odd stride: conflict-free row writes
    X_ELEMS = BD * XS
    GATE = bool(gate)
    SOFTPLUS = bool(delta_softplus)
    ZERO = T(0)
    ONE = T(1)
    LOG2E_T = T(LOG2E)
    LN2_T = T(1 / LOG2E)
    SOFTPLUS_LINEAR = T(20)

    @cuda.jit(fastmath=True)
    def selective_scan_bwd(u, delta, A, Bm, Cm, Dskip, z, bias, g, starts, du, ddelta, dz,
                           da_part, dskip_part, dbias_part, db_part, dc_part):
        """u, delta, z, g, du, ddelta, dz: [batch, dim, L]; A: [dim, N]; Bm, Cm: [batch, N, L];
        Dskip, bias: [dim]; starts: [batch, dim, chunks, N]; da_part: [batch, dim, N];
        dskip_part, dbias_part: [batch, dim]; db_part, dc_part: [batch, dim blocks, N, L]."""
        us = cuda.shared.array(TILE, T)
        ds = cuda.shared.array(TILE, T)
        zs = cuda.shared.array(Z_TILE, T)
        gs = cuda.shared.array(TILE, T)
        bs = cuda.shared.array(BC_TILE, T)
        cs = cuda.shared.array(BC_TILE, T)
        xs = cuda.shared.array(X_ELEMS, T)
        x = cuda.local.array(N, T)
        a2 = cuda.local.array(N, T)
        carry = cuda.local.array(N, T)
        da = cuda.local.array(N, T)

        tid = cuda.threadIdx.x
        nd = u.shape[1]
        seqlen = u.shape[2]
        blocks_d = (nd + BD - 1) // BD
        b = cuda.blockIdx.x // blocks_d
        blk = cuda.blockIdx.x - b * blocks_d
        d0 = blk * BD
        d = d0 + tid
        active = d < nd
        for n in range(N):
            a2[n] = A[U(d), U(n)] * LOG2E_T if active else ZERO
            carry[n] = ZERO
            da[n] = ZERO
        skip = Dskip[U(d)] if active else ZERO
        dt_bias = bias[U(d)] if active else ZERO
        dskip = ZERO
        dbias = ZERO
        row = tid * LS
        xrow = tid * XS
        if not active:  # an idle channel's states and dy stay zero in the channel sums
            for i in range(XS):
                xs[U(xrow + i)] = ZERO

        for c in range((seqlen + LC - 1) // LC - 1, -1, -1):  # chunks last to first
            l0 = c * LC
            steps = min(LC, seqlen - l0)
            cuda.syncthreads()  # the previous chunk's tiles and states are consumed
            for i in range(tid, BD * LC, BD):  # a warp reads LC consecutive steps of a row
                r = i // LC
                t = i - r * LC
                ok = d0 + r < nd and l0 + t < seqlen
                k = U(r * LS + t)
                us[k] = u[U(b), U(d0 + r), U(l0 + t)] if ok else ZERO
                ds[k] = delta[U(b), U(d0 + r), U(l0 + t)] if ok else ZERO
                gs[k] = g[U(b), U(d0 + r), U(l0 + t)] if ok else ZERO
                if GATE:
                    zs[k] = z[U(b), U(d0 + r), U(l0 + t)] if ok else ZERO
            for i in range(tid, N * LC, BD):
                n = i // LC
                t = i - n * LC
                ok = l0 + t < seqlen
                k = U(n * LS + t)
                bs[k] = Bm[U(b), U(n), U(l0 + t)] if ok else ZERO
                cs[k] = Cm[U(b), U(n), U(l0 + t)] if ok else ZERO
            cuda.syncthreads()

            # the chunk's states again from the saved one, exactly as the forward ran them;
            # dy (over g) and dz (over z) per step
            if active:
                for n in range(N):
                    x[n] = starts[U(b), U(d), U(c), U(n)]
                for t in range(steps):
                    ut = us[U(row + t)]
                    dt = ds[U(row + t)] + dt_bias
                    if SOFTPLUS and dt <= SOFTPLUS_LINEAR:
                        dt = math.log1p(math.exp(dt))
                    dtu = dt * ut
                    y = skip * ut
                    for n in range(N):
                        x[n] = math.exp2(dt * a2[n]) * x[n] + dtu * bs[U(n * LS + t)]
                        xs[U(xrow + n * LC + t)] = x[n]
                        y += x[n] * cs[U(n * LS + t)]
                    gt = gs[U(row + t)]
                    if GATE:
                        zt = zs[U(row + t)]
                        sig = ONE / (ONE + math.exp(-zt))
                        gs[U(row + t)] = gt * zt * sig
                        zs[U(row + t)] = gt * y * sig * (ONE + zt * (ONE - sig))
            cuda.syncthreads()

            # dC_t = sum over the block's channels of x_t dy_t, a fixed-order sum per (n, t)
            for i in range(tid, N * LC, BD):
                n = i // LC
                t = i - n * LC
                if t < steps:
                    acc = ZERO
                    for r in range(BD):
                        acc += xs[U(r * XS + n * LC + t)] * gs[U(r * LS + t)]
                    dc_part[U(b), U(blk), U(n), U(l0 + t)] = acc
            cuda.syncthreads()

            # the adjoint backwards through the chunk: lam_t = C_t dy_t + exp(dt_{t+1} A)
            # lam_{t+1}; x_t's slot takes lam_t dt_t u_t for dB once x_t is read
            if active:
                for t in range(steps - 1, -1, -1):
                    ut = us[U(row + t)]
                    dt = ds[U(row + t)] + dt_bias
                    if SOFTPLUS and dt <= SOFTPLUS_LINEAR:
                        dt = math.log1p(math.exp(dt))
                    dtu = dt * ut
                    dy = gs[U(row + t)]
                    lam_b = ZERO
                    qa = ZERO
                    for n in range(N):
                        lam = carry[n] + cs[U(n * LS + t)] * dy
                        e = math.exp2(dt * a2[n])
                        if t > 0:
                            x_prev = xs[U(xrow + n * LC + t - 1)]
                        else:
                            x_prev = starts[U(b), U(d), U(c), U(n)]
                        q = lam * e * x_prev
                        qa += q * a2[n]
                        da[n] += q * dt
                        lam_b += lam * bs[U(n * LS + t)]
                        xs[U(xrow + n * LC + t)] = lam * dtu
                        carry[n] = e * lam
                    ddt = qa * LN2_T + lam_b * ut
                    if SOFTPLUS:
                        ddt *= -math.expm1(-dt)  # sigmoid(delta + bias), exact for small dt
                    us[U(row + t)] = lam_b * dt + dy * skip
                    ds[U(row + t)] = ddt
                    dskip += dy * ut
                    dbias += ddt
            cuda.syncthreads()

            # dB_t = sum over the block's channels of lam_t dt_t u_t; du, d delta, dz stored
            for i in range(tid, N * LC, BD):
                n = i // LC
                t = i - n * LC
                if t < steps:
                    acc = ZERO
                    for r in range(BD):
                        acc += xs[U(r * XS + n * LC + t)]
                    db_part[U(b), U(blk), U(n), U(l0 + t)] = acc
            for i in range(tid, BD * LC, BD):
                r = i // LC
                t = i - r * LC
                if d0 + r < nd and l0 + t < seqlen:
                    k = U(r * LS + t)
                    du[U(b), U(d0 + r), U(l0 + t)] = us[k]
                    ddelta[U(b), U(d0 + r), U(l0 + t)] = ds[k]
                    if GATE:
                        dz[U(b), U(d0 + r), U(l0 + t)] = zs[k]

        if active:
            for n in range(N):
                da_part[U(b), U(d), U(n)] = da[n]
            dskip_part[U(b), U(d)] = dskip
            dbias_part[U(b), U(d)] = dbias

    return selective_scan_bwd


@per_dtype
def _reduce_kernel(T):
    @cuda.jit
    def sum_middle(part, out):
        """out[x, m] = sum_p part[x, p, m], p in order (deterministic); one thread per (x, m):
        a warp reads consecutive m (coalesced)."""
        i = cuda.grid(1)
        cols = part.shape[2]
        if i < part.shape[0] * cols:
            xi = i // cols
            m = i - xi * cols
            acc = T(0)
            for p in range(part.shape[1]):
                acc += part[U(xi), U(p), U(m)]
            out[U(xi), U(m)] = acc

    return sum_middle


def _sum_middle(part):
    """[X, P, M] -> [X, M], summed over P in order."""
    out = torch.empty((part.shape[0], part.shape[2]), device=part.device, dtype=part.dtype)
    total = part.shape[0] * part.shape[2]
    launch(_reduce_kernel(part.dtype), -(-total // REDUCE_THREADS), REDUCE_THREADS, part, out)
    return out


def forward_train(u, delta, A, B, C, D, z, delta_bias, *, gate=True, delta_softplus=True):
    """The output, and what backward needs: the inputs (z only with the gate) and the state
    entering every backward chunk of LC steps ([B, D, L / LC, N], in the input's precision,
    the very values the forward carried, so the backward recomputes its states exactly)."""
    u, delta, A, B, C, D, z, delta_bias = (
        x.contiguous() for x in (u, delta, A, B, C, D, z, delta_bias))
    nb, nd, length = u.shape
    dstate = A.shape[1]
    lc = bwd_chunk(dstate, u.element_size())
    starts = torch.empty((nb, nd, -(-length // lc), dstate), device=u.device, dtype=u.dtype)
    out = _forward(u, delta, A, B, C, D, z, delta_bias, gate, delta_softplus, starts, lc)
    return out, (u, delta, A, B, C, D, z if gate else None, delta_bias, starts)


def backward(saved, g, *, gate=True, delta_softplus=True):
    """The reverse-time adjoint per (batch, channel) thread, then the sums over batch (dA, dD,
    d delta_bias) and over channel blocks (dB, dC) in a small fixed-order reduction kernel."""
    u, delta, A, B, C, D, z, delta_bias, starts = saved
    g = g.contiguous()
    nb, nd, length = u.shape
    dstate = A.shape[1]
    lc = bwd_chunk(dstate, u.element_size())
    nblk = -(-nd // BD)
    du, ddelta = torch.empty_like(u), torch.empty_like(u)
    dz = torch.empty_like(u) if gate else torch.zeros_like(u)
    da_part = torch.empty((nb, nd, dstate), device=u.device, dtype=u.dtype)
    dskip_part = torch.empty((nb, nd), device=u.device, dtype=u.dtype)
    dbias_part = torch.empty((nb, nd), device=u.device, dtype=u.dtype)
    db_part = torch.empty((nb, nblk, dstate, length), device=u.device, dtype=u.dtype)
    dc_part = torch.empty_like(db_part)
    kernel = build_bwd(numba_type(u.dtype), dstate, bool(gate), bool(delta_softplus), lc)
    launch(kernel, nb * nblk, BD, u, delta, A, B, C, D, u if z is None else z, delta_bias, g,
           starts, du, ddelta, dz, da_part, dskip_part, dbias_part, db_part, dc_part)
    dA = _sum_middle(da_part.view(1, nb, nd * dstate)).view(nd, dstate)
    dD = _sum_middle(dskip_part.view(1, nb, nd)).view(nd)
    dbias = _sum_middle(dbias_part.view(1, nb, nd)).view(nd)
    dB = _sum_middle(db_part.view(nb, nblk, dstate * length)).view(nb, dstate, length)
    dC = _sum_middle(dc_part.view(nb, nblk, dstate * length)).view(nb, dstate, length)
    return du, ddelta, dA, dB, dC, dD, dz, dbias
