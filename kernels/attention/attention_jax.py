"""JAX attention, hand-written and blocked over queries so no [S, S] matrix exists at once.

The query axis is cut into static chunks in a Python loop (unrolled at trace time: a handful
of chunks, each with static shapes XLA can fuse). Each chunk computes its scores against the
keys it can see (with `causal`, keys after the chunk's last query are never touched, so causal
does half the work), an exact softmax over the full row, and the P.V product. Scores,
softmax and P.V are float32 for bf16/fp16 inputs (`preferred_element_type`, upcast v), and
float32 matmuls run at full precision (`precision="highest"`), then the output is cast back.
Memory is O(chunk x S): the chunk keeps the score block near 2**22 elements. The row max is held
out of autodiff (`stop_gradient`, as jax.nn.softmax does): the softmax does not depend on it,
and its gradient would cost a mask, a count and a select per score block."""

import math

import jax
import jax.numpy as jnp

SCORE_ELEMS = 1 << 22
MAX_CHUNKS = 16


def forward(q, k, v, causal=False):
    b, h, s_len, d = q.shape
    cdt = jnp.promote_types(q.dtype, jnp.float32)
    chunk = max(SCORE_ELEMS // max(1, b * h * s_len), -(-s_len // MAX_CHUNKS), 16)
    chunk = min(chunk, s_len)
    scale = jnp.asarray(1.0 / math.sqrt(d), dtype=cdt)
    vc = v.astype(cdt)
    outs = []
    for i0 in range(0, s_len, chunk):
        i1 = min(i0 + chunk, s_len)
        kend = i1 if causal else s_len
        scores = jnp.einsum("bhqd,bhkd->bhqk", q[:, :, i0:i1], k[:, :, :kend],
                            preferred_element_type=cdt, precision="highest") * scale
        if causal:
            seen = jnp.arange(i0, i1)[:, None] >= jnp.arange(kend)[None, :]
            scores = jnp.where(seen, scores, -jnp.inf)
        weights = jnp.exp(scores - jax.lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True)))
        denom = jnp.sum(weights, axis=-1, keepdims=True)
        blk = jnp.einsum("bhqk,bhkd->bhqd", weights, vc[:, :, :kend], precision="highest")
        outs.append((blk / denom).astype(q.dtype))
    return outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=2)
