"""JAX cross-entropy (jitted by the jax_jit backend), optax's
softmax_cross_entropy_with_integer_labels formulation: logits centred by their row max, the
target's centred logit gathered, plus the label-smoothing mean; low-precision logits computed in
float32 and the loss rounded once to their dtype. As in optax, the max is held out of autodiff
(`stop_gradient`): the loss does not depend on the shift, and differentiating jnp.max would add
a mask, a count and a select over the logits to the backward."""

import jax
import jax.numpy as jnp


def forward(logits, target, label_smoothing):
    dt = jnp.promote_types(logits.dtype, jnp.float32)
    z = logits.astype(dt)
    shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
    loss = jnp.log(jnp.sum(jnp.exp(shifted), axis=-1))
    loss = loss - (1.0 - label_smoothing) * jnp.take_along_axis(
        shifted, target[:, None], axis=-1)[:, 0]
    if label_smoothing:
        loss = loss - label_smoothing * jnp.mean(shifted, axis=-1)
    return jnp.mean(loss).astype(logits.dtype)
