"""NumPy selective scan: the recurrence over L is sequential, so it is cut into chunks of
CHUNK steps. Per chunk the costly elementwise work (exp(dt * A) and dt * u * B for every state
element of CHUNK steps) is one vectorised pass each; the recurrence then runs step by step
in place over [B, D, N] slices (two ufunc calls a step), and the outputs of the whole chunk
are one contraction with C. Memory is O(B D CHUNK N), not O(B D L N). Computed in the input's
precision (float16 is upcast to float32: NumPy's half arithmetic is slow and inexact). Arrays
are created with the `_like` functions, so the same code runs on CuPy arrays (the cupy
backend).

Backward (forward_train/backward): like mamba_ssm's kernel it saves the inputs, plus the state
entering each chunk ([B, D, L / CHUNK, N], 1/4 of one [B, D, L] input at N = 16), and
recomputes each chunk's states from there, last chunk first. Per chunk the adjoint
lam_t = C_t dy_t + exp(dt_{t+1} A) lam_{t+1} runs step by step in place over [B, D, N] slices
(two ufunc calls a step, as the forward), and everything else (d dt, du, dA, dB, dC) is one
vectorised pass over the chunk. The sums over the whole sequence (dA, dD, d delta_bias) are
accumulated in float64, chunk by chunk. The training path computes the decays exp(dt A) in
float64 and rounds them once (+5% of the backward's time): NumPy's float32 exp is off by up to
1 ulp with a slight bias (-0.008 eps on average near 1), and over the ~1e4-step memory of a
slowly decaying channel the gradients amplify that into 80-300 eps (dA, dB, dC, d delta; the
hard case in the tests: 13-20 eps with the rounded float64 decays, as torch). The forward alone
keeps the float32 exp: its output takes the bias as ~10 eps, inside its tolerance."""

import numpy as np

CHUNK = 64


def _upcast(arrays):
    """float16 is computed in float32 (see the module docstring); other dtypes as they are."""
    if arrays[0].dtype == np.float16:
        return tuple(x.astype(np.float32) for x in arrays)
    return tuple(arrays)


def _dt(delta, delta_bias, delta_softplus):
    dt = delta + delta_bias[:, None]
    if delta_softplus:
        np.logaddexp(0, dt, out=dt)  # softplus, stable for any sign
    return dt


def _decays(dt, A, exact):
    """exp(dt A) of one chunk, [B, D, T, N]; `exact`: computed in float64, rounded once."""
    if exact and dt.dtype != np.float64:
        return np.exp(dt[..., None].astype(np.float64) * A[None, :, None, :]).astype(dt.dtype)
    return np.exp(dt[..., None] * A[None, :, None, :])


def _chunk_states(decay, h, x, tmp):
    """In place: h (the drives dt u B of one chunk, [B, D, T, N]) becomes the chunk's states,
    starting from the state x entering it."""
    np.multiply(decay[:, :, 0], x, out=tmp)
    h[:, :, 0] += tmp
    for t in range(1, h.shape[2]):
        np.multiply(decay[:, :, t], h[:, :, t - 1], out=tmp)
        h[:, :, t] += tmp


def _scan(u, delta, A, B, C, D, z, delta_bias, gate, delta_softplus, starts=None):
    """The forward pass in the computing dtype; `starts` [B, D, chunks, N], if given, receives
    the state entering each chunk (and the decays are computed as the backward's)."""
    nb, nd, length = u.shape
    n = A.shape[1]
    dt = _dt(delta, delta_bias, delta_softplus)
    dtu = dt * u
    bt = B.transpose(0, 2, 1)  # [B, L, N] views: a step's N values are contiguous
    ct = C.transpose(0, 2, 1)
    x = np.zeros_like(u, shape=(nb, nd, n))
    y = np.empty_like(u)
    tmp = np.empty_like(x)
    for t0 in range(0, length, CHUNK):
        t1 = min(t0 + CHUNK, length)
        if starts is not None:
            starts[:, :, t0 // CHUNK] = x
        decay = _decays(dt[:, :, t0:t1], A, starts is not None)       # [B, D, T, N]
        h = dtu[:, :, t0:t1, None] * bt[:, None, t0:t1, :]           # becomes the states
        _chunk_states(decay, h, x, tmp)
        x[...] = h[:, :, -1]
        y[:, :, t0:t1] = np.einsum("bdtn,btn->bdt", h, ct[:, t0:t1])
    y += D[:, None] * u
    if gate:
        y *= z * (0.5 + 0.5 * np.tanh(0.5 * z))  # silu(z), overflow-free sigmoid
    return y


def forward(u, delta, A, B, C, D, z, delta_bias, *, gate=True, delta_softplus=True):
    out_dtype = u.dtype
    args = _upcast((u, delta, A, B, C, D, z, delta_bias))
    return _scan(*args, gate, delta_softplus).astype(out_dtype, copy=False)


def forward_train(u, delta, A, B, C, D, z, delta_bias, *, gate=True, delta_softplus=True):
    """The output, and what backward needs: the inputs (z only with the gate) and the state
    entering each chunk, in the computing dtype."""
    out_dtype = u.dtype
    args = _upcast((u, delta, A, B, C, D, z, delta_bias))
    nb, nd, length = u.shape
    starts = np.empty_like(args[0], shape=(nb, nd, -(-length // CHUNK), A.shape[1]))
    y = _scan(*args, gate, delta_softplus, starts=starts)
    return y.astype(out_dtype, copy=False), (u, delta, A, B, C, D, z if gate else None,
                                               delta_bias, starts)


def backward(saved, g, *, gate=True, delta_softplus=True):
    u_in, delta, A, B, C, D, z, delta_bias, starts = saved
    out_dtype = u_in.dtype
    if gate:
        u, delta, A, B, C, D, z, delta_bias, g = _upcast(
            (u_in, delta, A, B, C, D, z, delta_bias, g))
    else:
        u, delta, A, B, C, D, delta_bias, g = _upcast((u_in, delta, A, B, C, D, delta_bias, g))
    nb, nd, length = u.shape
    n = A.shape[1]
    raw = delta + delta_bias[:, None]
    dt = np.logaddexp(0, raw) if delta_softplus else raw
    dtu = dt * u
    bt = B.transpose(0, 2, 1)
    ct = C.transpose(0, 2, 1)
    if gate:
        sig = 0.5 + 0.5 * np.tanh(0.5 * z)
        dy = g * z * sig
    else:
        dy = g
    du = dy * D[:, None]
    ddt = np.empty_like(u)
    dz = np.zeros_like(u) if not gate else np.empty_like(u)
    dB = np.empty_like(B)
    dC = np.empty_like(C)
    dA = np.zeros_like(A, dtype=np.float64)
    carry = np.zeros_like(u, shape=(nb, nd, n))  # exp(dt_{t+1} A) lam_{t+1}
    tmp = np.empty_like(carry)
    for c in reversed(range(starts.shape[2])):
        t0 = c * CHUNK
        t1 = min(t0 + CHUNK, length)
        decay = _decays(dt[:, :, t0:t1], A, True)                         # [B, D, T, N]
        states = dtu[:, :, t0:t1, None] * bt[:, None, t0:t1, :]
        _chunk_states(decay, states, starts[:, :, c], tmp)
        dy_c = dy[:, :, t0:t1]
        if gate:  # dz = g y silu'(z), with y = <C, x> + D u before the gate
            y = np.einsum("bdtn,btn->bdt", states, ct[:, t0:t1])
            y += D[:, None] * u[:, :, t0:t1]
            s = sig[:, :, t0:t1]
            dz[:, :, t0:t1] = g[:, :, t0:t1] * y * s * (1 + z[:, :, t0:t1] * (1 - s))
        lam = dy_c[..., None] * ct[:, None, t0:t1, :]                     # becomes the adjoint
        lam[:, :, -1] += carry
        for t in range(t1 - t0 - 2, -1, -1):
            np.multiply(decay[:, :, t + 1], lam[:, :, t + 1], out=tmp)
            lam[:, :, t] += tmp
        np.multiply(decay[:, :, 0], lam[:, :, 0], out=carry)
        # q = lam a x_prev, with x_prev the states shifted by one step
        q = decay * lam
        q[:, :, 1:] *= states[:, :, :-1]
        q[:, :, 0] *= starts[:, :, c]
        lam_b = np.einsum("bdtn,btn->bdt", lam, bt[:, t0:t1])
        ddt[:, :, t0:t1] = np.einsum("bdtn,dn->bdt", q, A) + lam_b * u[:, :, t0:t1]
        du[:, :, t0:t1] += lam_b * dt[:, :, t0:t1]
        dA += np.einsum("bdtn,bdt->dn", q, dt[:, :, t0:t1])
        dB[:, :, t0:t1] = np.einsum("bdtn,bdt->bnt", lam, dtu[:, :, t0:t1])
        dC[:, :, t0:t1] = np.einsum("bdtn,bdt->bnt", states, dy_c)
    if delta_softplus:  # softplus'(raw) = sigmoid(raw) = 1 - exp(-dt): exact even for dt ~ 1e-3
        ddt *= -np.expm1(-dt)
    d_skip = np.einsum("bdl,bdl->d", dy, u, dtype=np.float64)
    d_bias = ddt.sum(axis=(0, 2), dtype=np.float64)
    return tuple(x.astype(out_dtype, copy=False) for x in (
        du, ddt, dA, dB, dC, d_skip, dz, d_bias))
