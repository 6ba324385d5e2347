"""JAX selective scan, sequential form: lax.scan over L carrying the [B, D, N] state (the
loop XLA compiles once, not an unrolled graph; `unroll` amortises the loop overhead over a
few steps). Each step computes exp(dt_t A) and dt_t u_t B_t for its own slice only, so memory
is O(B D N) beyond the inputs, and y_t = <C_t, x_t> is contracted inside the step.
bf16/fp16 inputs are computed in float32. The `assoc` variant is the parallel form
(lax.associative_scan), which trades O(B D L N) memory for O(log L) depth."""

import jax
import jax.numpy as jnp
from jax import lax

UNROLL = 8


def forward(u, delta, A, B, C, D, z, delta_bias, gate=True, delta_softplus=True):
    out_dtype = u.dtype
    cdt = jnp.promote_types(out_dtype, jnp.float32)
    u, delta, A, B, C, D, z, delta_bias = (
        x.astype(cdt) for x in (u, delta, A, B, C, D, z, delta_bias))
    dt = delta + delta_bias[:, None]
    if delta_softplus:
        dt = jax.nn.softplus(dt)

    def step(x, inp):
        dt_t, dtu_t, b_t, c_t = inp                  # [B, D], [B, D], [B, N], [B, N]
        x = jnp.exp(dt_t[..., None] * A) * x + dtu_t[..., None] * b_t[:, None, :]
        return x, jnp.einsum("bdn,bn->bd", x, c_t, precision="highest")

    time_major = (jnp.moveaxis(dt, 2, 0), jnp.moveaxis(dt * u, 2, 0),
                  jnp.moveaxis(B, 2, 0), jnp.moveaxis(C, 2, 0))
    x0 = jnp.zeros(u.shape[:2] + A.shape[1:], dtype=cdt)
    _, ys = lax.scan(step, x0, time_major, unroll=UNROLL)              # [L, B, D]
    y = jnp.moveaxis(ys, 0, 2) + D[:, None] * u
    if gate:
        y = y * jax.nn.silu(z)
    return y.astype(out_dtype)
