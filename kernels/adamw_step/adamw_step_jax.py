"""JAX AdamW step, functional (jit returns new arrays; without buffer donation XLA cannot
update in place). Written as optax.adamw computes it (optax is not a dependency here), with
torch's semantics: decay applied to the old param, eps outside the sqrt. bf16/fp16 state
computed in float32 and rounded once; XLA fuses the whole update into one loop."""

import math

import jax
import jax.numpy as jnp


def forward(param: jax.Array, grad: jax.Array, exp_avg: jax.Array, exp_avg_sq: jax.Array, *,
            lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
            step: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    ct = jnp.promote_types(param.dtype, jnp.float32)
    p, g = param.astype(ct), grad.astype(ct)
    m = beta1 * exp_avg.astype(ct) + (1.0 - beta1) * g
    v = beta2 * exp_avg_sq.astype(ct) + (1.0 - beta2) * g * g
    step_size = lr / (1.0 - beta1 ** step)
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    p = p * (1.0 - lr * weight_decay) - step_size * m / (jnp.sqrt(v) / bc2_sqrt + eps)
    return p.astype(param.dtype), m.astype(exp_avg.dtype), v.astype(exp_avg_sq.dtype)
