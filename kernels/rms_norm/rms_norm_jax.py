"""JAX RMS norm (jitted by the jax_jit backend; jax.nn has no RMS norm op, this is what
flax.linen.RMSNorm computes): low-precision inputs computed in float32 and rounded once."""

import jax.numpy as jnp
from jax import lax


def forward(x, weight, eps):
    dt = jnp.promote_types(x.dtype, jnp.float32)
    xf = x.astype(dt)
    ms = jnp.mean(jnp.square(xf), axis=-1, keepdims=True)
    return (xf * lax.rsqrt(ms + eps) * weight.astype(dt)).astype(x.dtype)
