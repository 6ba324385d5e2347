"""JAX focal loss (jitted by the jax_jit backend), the stable form: z = (1 - 2t) x is the logit
of the wrong answer, e = exp(-|z|) is shared by the cross-entropy softplus(z) = max(z, 0) +
log1p(e) and by 1 - p_t = sigmoid(z) = (1 or e) / (1 + e) (XLA fuses it into one loop; gamma is
static, so gamma = 2 becomes a multiply). Low-precision inputs are computed in float32 and the
mean rounded once."""

import jax.numpy as jnp


def forward(logits, targets, alpha, gamma):
    dt = jnp.promote_types(logits.dtype, jnp.float32)
    x = logits.astype(dt)
    positive = targets > 0.5
    z = jnp.where(positive, -x, x)
    e = jnp.exp(-jnp.abs(z))
    ce = jnp.maximum(z, 0.0) + jnp.log1p(e)
    p = jnp.where(z >= 0, 1.0, e) / (1.0 + e)
    mod = p ** int(gamma) if float(gamma).is_integer() else p ** gamma
    alpha_t = jnp.where(positive, alpha, 1.0 - alpha).astype(dt)
    return jnp.mean(alpha_t * mod * ce).astype(logits.dtype)
