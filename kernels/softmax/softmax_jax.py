"""JAX softmax (jitted by the jax_jit backend): low-precision inputs computed in float32."""

import jax.numpy as jnp


def forward(x):
    xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    e = jnp.exp(xf - jnp.max(xf, axis=-1, keepdims=True))
    return (e / jnp.sum(e, axis=-1, keepdims=True)).astype(x.dtype)
