"""JAX softmax (jitted by the jax_jit backend): low-precision inputs computed in float32.

The row max is held out of autodiff (`stop_gradient`), as in jax.nn.softmax: softmax does not
depend on the shift, so its gradient through the max is zero, but JAX cannot know that and would
differentiate jnp.max (an equality mask, a count and a select: three more passes over the
input). Measured on the 2-core VM, 4096 x 4096 float32, jitted forward + backward step: 89.8 ms
with the max differentiated, 47.3 ms without."""

import jax
import jax.numpy as jnp


def forward(x):
    xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    e = jnp.exp(xf - jax.lax.stop_gradient(jnp.max(xf, axis=-1, keepdims=True)))
    return (e / jnp.sum(e, axis=-1, keepdims=True)).astype(x.dtype)
