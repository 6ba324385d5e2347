"""JAX attention: the library op, jax.nn.dot_product_attention, with `implementation=None`,
which in this JAX (0.10) always means its XLA path, on the GPU as on the CPU: two einsums with a
softmax between them, compiled by XLA like any other jitted code. It is not cuDNN's fused flash
kernel (that is `implementation="cudnn"`, GPU-only and without float32 support), so it
materialises the [B, H, S, S] logits for every dtype.

It takes [B, S, H, D] ("BTNH"), so the [B, H, S, D] inputs are transposed in and out (XLA
usually folds these into the dot layouts). Its XLA path computes logits and softmax in
float32, then rounds the weights to the input dtype before P.V. It also computes the softmax in
float32 for float64 inputs, so float64 cases get float32 accuracy from this variant.

Precision: the op gives its float32/float64 einsums no precision, so they would take JAX's
default, which on Ampere/Hopper GPUs runs float32 dots in TF32 (10 mantissa bits), far outside
the float32 tolerance. `jax.default_matmul_precision("highest")` around the call, inside the
traced function, makes them full float32 like every other JAX kernel here
(`precision="highest"`): the setting is read when each dot is traced and stored in it, and its
gradient's dots inherit it. bf16 is unchanged: its Q.K^T einsum names its own algorithm
(BF16_BF16_F32), and for the bf16 P.V dot "highest" only governs float32 operands, so both
stay bf16 tensor-core products accumulated in float32."""

import jax
import jax.numpy as jnp


def forward(q, k, v, causal=False):
    to_bshd = (0, 2, 1, 3)
    with jax.default_matmul_precision("highest"):
        out = jax.nn.dot_product_attention(jnp.transpose(q, to_bshd),
                                           jnp.transpose(k, to_bshd),
                                           jnp.transpose(v, to_bshd), is_causal=causal)
    return jnp.transpose(out, to_bshd)
