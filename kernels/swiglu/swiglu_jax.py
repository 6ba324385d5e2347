"""JAX SwiGLU: jax.nn.silu(a) * b (XLA fuses it into one loop); bf16/fp16 computed in float32
and rounded once, as the library ops of the other frameworks do."""

import jax
import jax.numpy as jnp


def forward(a: jax.Array, b: jax.Array) -> jax.Array:
    ct = jnp.promote_types(a.dtype, jnp.float32)
    return (jax.nn.silu(a.astype(ct)) * b.astype(ct)).astype(a.dtype)
