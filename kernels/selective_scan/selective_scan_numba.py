"""numba selective scan: prange over the independent (batch, channel) rows; each row runs
the recurrence sequentially over L with its N-element state in a small local array (it stays
in registers/L1). State, output and exponentials are float64: the recurrence rounds once per
step and its errors are carried for ~1/(dt |A|) steps, and float64 costs little here because
the scalar exp() calls dominate, not the arithmetic width.

B and C are transposed to [B, L, N] once in the wrapper (a copy of 2 B L N elements, small
next to the B D L inputs) so each step reads its N values contiguously; every channel of a
batch re-reads them from cache.

Backward (forward_train/backward): saved are the inputs (z only with the gate) and, as mamba_ssm
does, the float64 state entering each CHUNK-step chunk of every row ([B, D, L / CHUNK, N]:
1/4 of one float32 [B, D, L] input at N = 16). A row's backward walks its chunks last to first:
it recomputes the chunk's states and decays into two small per-thread buffers, then runs the
adjoint lam_t = C_t dy_t + exp(dt_{t+1} A) lam_{t+1} backwards through them, carrying lam into
the previous chunk. u, delta and z gradients are per element; dA, dD and d delta_bias sum over
batch and time, dB and dC over channels. Threads own blocks of CHANNEL_BLOCK channels of one
batch element: each accumulates dB and dC into its block's own float64 [L, N] partial buffer
(no two threads write the same memory) and dA, dD, d delta_bias per (batch, channel) in float64;
the partials are then summed in NumPy."""

import numpy as np
from numba import njit, prange

CHUNK = 128  # steps between saved states: the backward's per-thread buffers are CHUNK x N
CHANNEL_BLOCK = 64  # channels per parallel work item of the backward


@njit(parallel=True, fastmath={"contract"}, cache=False)
def _scan(u, delta, A, bt, ct, d_skip, z, delta_bias, out, starts, gate, delta_softplus):
    """The forward pass; `starts` [B, D, chunks, N] receives the state entering each chunk
    (pass an array with no chunks to save nothing)."""
    nb, nd, length = u.shape
    save = starts.shape[2] > 0
    n = A.shape[1]
    for item in prange(nb * nd):
        b = item // nd
        d = item % nd
        a_row = np.empty(n, dtype=np.float64)
        for i in range(n):
            a_row[i] = A[d, i]
        x = np.zeros(n, dtype=np.float64)
        bias = np.float64(delta_bias[d])
        skip = np.float64(d_skip[d])
        for t in range(length):
            if save and t % CHUNK == 0:
                for i in range(n):
                    starts[b, d, t // CHUNK, i] = x[i]
            dt = np.float64(delta[b, d, t]) + bias
            if delta_softplus and dt <= 20.0:
                dt = np.log1p(np.exp(dt))
            ut = np.float64(u[b, d, t])
            dtu = dt * ut
            y = 0.0
            for i in range(n):
                x[i] = np.exp(dt * a_row[i]) * x[i] + dtu * bt[b, t, i]
                y += x[i] * ct[b, t, i]
            y += skip * ut
            if gate:
                zt = np.float64(z[b, d, t])
                y *= zt / (1.0 + np.exp(-zt))
            out[b, d, t] = y


def forward(u, delta, A, B, C, D, z, delta_bias, *, gate=True, delta_softplus=True):
    out = np.empty_like(u)
    bt = np.ascontiguousarray(B.transpose(0, 2, 1))
    ct = np.ascontiguousarray(C.transpose(0, 2, 1))
    _scan(u, delta, A, bt, ct, D, z, delta_bias, out, np.empty((0, 0, 0, 0)), bool(gate),
          bool(delta_softplus))
    return out


def forward_train(u, delta, A, B, C, D, z, delta_bias, *, gate=True, delta_softplus=True):
    """The output, and what backward needs: the inputs (B and C as the [B, L, N] copies the
    forward made; z only with the gate) and the float64 state entering each chunk."""
    nb, nd, length = u.shape
    out = np.empty_like(u)
    bt = np.ascontiguousarray(B.transpose(0, 2, 1))
    ct = np.ascontiguousarray(C.transpose(0, 2, 1))
    starts = np.empty((nb, nd, -(-length // CHUNK), A.shape[1]))
    _scan(u, delta, A, bt, ct, D, z, delta_bias, out, starts, bool(gate), bool(delta_softplus))
    return out, (u, delta, A, bt, ct, D, z if gate else None, delta_bias, starts)


@njit(parallel=True, fastmath={"contract"}, cache=False)
def _scan_backward(u, delta, A, bt, ct, d_skip, z, delta_bias, g, starts, du, ddelta, dz,
                   da_part, dskip_part, dbias_part, db_part, dc_part, gate, delta_softplus):
    nb, nd, length = u.shape
    n = A.shape[1]
    nblk = db_part.shape[1]
    for item in prange(nb * nblk):
        b = item // nblk
        blk = item % nblk
        xs = np.empty((CHUNK + 1, n))  # a chunk's states; xs[0] is the one entering it
        ea = np.empty((CHUNK, n))      # its decays exp(dt A)
        carry = np.empty(n)            # exp(dt_{t+1} A) lam_{t+1}
        da = np.empty(n)
        a_row = np.empty(n)
        dbp = db_part[b, blk]          # [L, N], this work item's own
        dcp = dc_part[b, blk]
        dbp[:, :] = 0.0
        dcp[:, :] = 0.0
        for d in range(blk * CHANNEL_BLOCK, min((blk + 1) * CHANNEL_BLOCK, nd)):
            for i in range(n):
                a_row[i] = A[d, i]
                carry[i] = 0.0
                da[i] = 0.0
            bias = np.float64(delta_bias[d])
            skip = np.float64(d_skip[d])
            dskip = 0.0
            dbias = 0.0
            for c in range(starts.shape[2] - 1, -1, -1):
                t0 = c * CHUNK
                t1 = min(t0 + CHUNK, length)
                for i in range(n):
                    xs[0, i] = starts[b, d, c, i]
                for t in range(t0, t1):
                    k = t - t0
                    dt = np.float64(delta[b, d, t]) + bias
                    if delta_softplus and dt <= 20.0:
                        dt = np.log1p(np.exp(dt))
                    dtu = dt * np.float64(u[b, d, t])
                    for i in range(n):
                        e = np.exp(dt * a_row[i])
                        ea[k, i] = e
                        xs[k + 1, i] = e * xs[k, i] + dtu * bt[b, t, i]
                for t in range(t1 - 1, t0 - 1, -1):
                    k = t - t0
                    dt = np.float64(delta[b, d, t]) + bias
                    if delta_softplus and dt <= 20.0:
                        dt = np.log1p(np.exp(dt))
                    ut = np.float64(u[b, d, t])
                    gt = np.float64(g[b, d, t])
                    dtu = dt * ut
                    if gate:
                        zt = np.float64(z[b, d, t])
                        sig = 1.0 / (1.0 + np.exp(-zt))
                        dy = gt * zt * sig
                        y = skip * ut
                        for i in range(n):
                            y += xs[k + 1, i] * ct[b, t, i]
                        dz[b, d, t] = gt * y * sig * (1.0 + zt * (1.0 - sig))
                    else:
                        dy = gt
                    lam_b = 0.0
                    qa = 0.0
                    for i in range(n):
                        lam = carry[i] + ct[b, t, i] * dy
                        q = lam * ea[k, i] * xs[k, i]
                        qa += q * a_row[i]
                        da[i] += q * dt
                        lam_b += lam * bt[b, t, i]
                        dbp[t, i] += lam * dtu
                        dcp[t, i] += xs[k + 1, i] * dy
                        carry[i] = ea[k, i] * lam
                    ddt = qa + lam_b * ut
                    if delta_softplus:
                        ddt *= -np.expm1(-dt)  # sigmoid(delta + bias), exact for small dt
                    du[b, d, t] = lam_b * dt + dy * skip
                    ddelta[b, d, t] = ddt
                    dskip += dy * ut
                    dbias += ddt
            for i in range(n):
                da_part[b, d, i] = da[i]
            dskip_part[b, d] = dskip
            dbias_part[b, d] = dbias


def backward(saved, g, *, gate=True, delta_softplus=True):
    u, delta, A, bt, ct, D, z, delta_bias, starts = saved
    nb, nd, length = u.shape
    n = A.shape[1]
    nblk = -(-nd // CHANNEL_BLOCK)
    du, ddelta = np.empty_like(u), np.empty_like(u)
    dz = np.empty_like(u) if gate else np.zeros_like(u)
    da_part = np.empty((nb, nd, n))
    dskip_part, dbias_part = np.empty((nb, nd)), np.empty((nb, nd))
    db_part = np.empty((nb, nblk, length, n))
    dc_part = np.empty((nb, nblk, length, n))
    _scan_backward(u, delta, A, bt, ct, D, u if z is None else z, delta_bias, g, starts, du,
                   ddelta, dz, da_part, dskip_part, dbias_part, db_part, dc_part, bool(gate),
                   bool(delta_softplus))
    dtype = u.dtype
    return (du, ddelta, da_part.sum(axis=0).astype(dtype),
            db_part.sum(axis=1).transpose(0, 2, 1).astype(dtype),
            dc_part.sum(axis=1).transpose(0, 2, 1).astype(dtype),
            dskip_part.sum(axis=0).astype(dtype), dz, dbias_part.sum(axis=0).astype(dtype))
