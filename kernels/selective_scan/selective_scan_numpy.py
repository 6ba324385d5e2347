"""NumPy selective scan: the recurrence over L is sequential, so it is cut into chunks of
CHUNK steps. Per chunk the costly elementwise work (exp(dt * A) and dt * u * B for every state
element of CHUNK steps) is one vectorised pass each; the recurrence then runs step by step
in place over [B, D, N] slices (two ufunc calls a step), and the outputs of the whole chunk
are one contraction with C. Memory is O(B D CHUNK N), not O(B D L N). Computed in the input's
precision (float16 is upcast to float32: NumPy's half arithmetic is slow and inexact). Arrays
are created with the `_like` functions, so the same code runs on CuPy arrays (the cupy
backend)."""

import numpy as np

CHUNK = 64


def forward(u, delta, A, B, C, D, z, delta_bias, *, gate=True, delta_softplus=True):
    out_dtype = u.dtype
    if out_dtype == np.float16:
        u, delta, A, B, C, D, z, delta_bias = (
            x.astype(np.float32) for x in (u, delta, A, B, C, D, z, delta_bias))
    nb, nd, length = u.shape
    n = A.shape[1]
    dt = delta + delta_bias[:, None]
    if delta_softplus:
        np.logaddexp(0, dt, out=dt)  # softplus, stable for any sign
    dtu = dt * u
    bt = B.transpose(0, 2, 1)  # [B, L, N] views: a step's N values are contiguous
    ct = C.transpose(0, 2, 1)
    x = np.zeros_like(u, shape=(nb, nd, n))
    y = np.empty_like(u)
    tmp = np.empty_like(x)
    for t0 in range(0, length, CHUNK):
        t1 = min(t0 + CHUNK, length)
        decay = np.exp(dt[:, :, t0:t1, None] * A[None, :, None, :])  # [B, D, T, N]
        h = dtu[:, :, t0:t1, None] * bt[:, None, t0:t1, :]           # becomes the states
        np.multiply(decay[:, :, 0], x, out=tmp)
        h[:, :, 0] += tmp
        for t in range(1, t1 - t0):
            np.multiply(decay[:, :, t], h[:, :, t - 1], out=tmp)
            h[:, :, t] += tmp
        x[...] = h[:, :, -1]
        y[:, :, t0:t1] = np.einsum("bdtn,btn->bdt", h, ct[:, t0:t1])
    y += D[:, None] * u
    if gate:
        y *= z * (0.5 + 0.5 * np.tanh(0.5 * z))  # silu(z), overflow-free sigmoid
    return y.astype(out_dtype, copy=False)
