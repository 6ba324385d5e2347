"""JAX RoPE (half-rotation layout), hand-written: jax has no rotary op (flax/maxtext write the
same few lines). XLA fuses it into one loop; bf16/fp16 computed in float32, rounded once."""

import jax
import jax.numpy as jnp


def forward(q: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    ct = jnp.promote_types(q.dtype, jnp.float32)
    qf, c, s = q.astype(ct), cos.astype(ct), sin.astype(ct)
    q1, q2 = jnp.split(qf, 2, axis=-1)
    return jnp.concatenate([q1 * c - q2 * s, q2 * c + q1 * s], axis=-1).astype(q.dtype)
