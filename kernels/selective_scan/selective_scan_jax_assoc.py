"""JAX selective scan, parallel form: the recurrence x_t = a_t x_{t-1} + b_t is an associative
scan over the pairs (a_t, b_t) = (exp(dt_t A), dt_t u_t B_t) with the operator
(a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2), which lax.associative_scan evaluates in O(log L)
depth (Blelloch's odd/even recursion, O(L) work). Decays are products of exp(dt A) values, so
the result is as accurate as the sequential loop (no exp of cumulative sums of dt). The price is
memory: a, b and the scan's intermediates are [B, D, L, N] tensors. bf16/fp16 inputs are
computed in float32; the default jax file is the sequential lax.scan."""

import jax
import jax.numpy as jnp
from jax import lax


def _combine(left, right):
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2


def forward(u, delta, A, B, C, D, z, delta_bias, gate=True, delta_softplus=True):
    out_dtype = u.dtype
    cdt = jnp.promote_types(out_dtype, jnp.float32)
    u, delta, A, B, C, D, z, delta_bias = (
        x.astype(cdt) for x in (u, delta, A, B, C, D, z, delta_bias))
    dt = delta + delta_bias[:, None]
    if delta_softplus:
        dt = jax.nn.softplus(dt)
    a = jnp.exp(dt[..., None] * A[:, None, :])                          # [B, D, L, N]
    b = (dt * u)[..., None] * jnp.swapaxes(B, 1, 2)[:, None, :, :]      # [B, D, L, N]
    _, x = lax.associative_scan(_combine, (a, b), axis=2)
    y = jnp.einsum("bdln,bnl->bdl", x, C, precision="highest") + D[:, None] * u
    if gate:
        y = y * jax.nn.silu(z)
    return y.astype(out_dtype)
