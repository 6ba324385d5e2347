"""JAX GELU: the library op jax.nn.gelu (its `approximate` is a bool; its default is the tanh
form, so the form is always passed explicitly). bf16/fp16 computed in float32, rounded once."""

import jax
import jax.numpy as jnp


def forward(x: jax.Array, *, approximate: str = "none") -> jax.Array:
    xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return jax.nn.gelu(xf, approximate=approximate == "tanh").astype(x.dtype)
