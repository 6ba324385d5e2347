"""Scaled dot-product attention (Vaswani et al., 2017): for q, k, v of shape [B, H, S, D],

    out = softmax(q @ k^T * scale + mask) @ v,   scale = 1 / sqrt(D),

with `mask` -inf above the diagonal when `causal` (query i sees keys j <= i), else zero.

Inputs: k and v are standard normal; q is standard normal times 2, so the logits
q.k / sqrt(D) have standard deviation 2 and each query's attention is peaked on a few keys, as
in trained models (with unit logits over a thousand keys every row would be close to a plain
average of v, and an error in the weights would hide in it).

Error model, and why the tolerance grows with sqrt(S) and sqrt(D): an output element is a
convex combination of S values of v. In float32 its error comes from (a) the logits, a length-D
dot product whose absolute error, about sqrt(D) eps |logit|, becomes a relative error of the
weights after exp(); (b) the softmax normalisation and the P.V product, sums over up to S
keys (sqrt(S) eps for random-signed terms, less for blocked or pairwise sums). Measured on
every backend here: 2-3 eps at S=64, 5-7 eps at S=1024-4096 (D=64), against a bound of
0.5 sqrt(S) + 0.5 * 2 sqrt(D) + 8 eps (17.7 and 32-48 eps there).

bfloat16 inputs are expected to be computed in float32 and rounded once: ~0.21 eps. Flash
kernels also round the weights P to bf16 before the P.V product; simulated in float64 that
adds little (0.24 eps at S=2048), so the bound is Tolerance(2), independent of S.
"""

import math

import numpy as np

from kernbench import KernelSpec, Tolerance

#: standard deviation of the logits q.k * scale (see the module docstring)
LOGIT_STD = 2.0


class AttentionSpec(KernelSpec):
    defaults = {"batch": 1, "heads": 8, "seq": 1024, "head_dim": 64, "causal": False}
    inputs = ("q", "k", "v")
    static_params = ("causal",)

    def check(self, params):
        for key in ("batch", "heads", "seq", "head_dim"):
            if params[key] < 1:
                raise ValueError(f"{key} must be at least 1")
        if params["head_dim"] > 256:
            raise ValueError("head_dim must be at most 256 (the Triton kernel holds a "
                             "[BLOCK_M, head_dim] query tile in registers)")

    def tolerance(self, params, dtype):
        if dtype in ("bfloat16", "float16"):
            return Tolerance(2.0)
        s, d = params["seq"], params["head_dim"]
        return Tolerance(0.5 * math.sqrt(s) + 0.5 * LOGIT_STD * math.sqrt(d) + 8.0)

    def make_inputs(self, params, rng):
        shape = (params["batch"], params["heads"], params["seq"], params["head_dim"])
        return {"q": LOGIT_STD * rng.standard_normal(shape),
                "k": rng.standard_normal(shape),
                "v": rng.standard_normal(shape)}

    def reference(self, inputs, params):
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        s_len = q.shape[2]
        scale = 1.0 / math.sqrt(q.shape[-1])
        future = np.triu(np.ones((s_len, s_len), dtype=bool), k=1)
        out = np.empty(q.shape[:3] + v.shape[3:])
        for b in range(q.shape[0]):  # one [S, S] float64 score matrix at a time
            for h in range(q.shape[1]):
                scores = (q[b, h] @ k[b, h].T) * scale
                if params["causal"]:
                    scores[future] = -np.inf
                weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
                weights /= weights.sum(axis=-1, keepdims=True)
                out[b, h] = weights @ v[b, h]
        return (out,)

    def flops(self, params):
        # q @ k^T and P @ v: 2*S*S*D each per (batch, head); a causal mask halves the work that
        # has to be done (the convention of the FlashAttention papers). Softmax is O(S*S), noise.
        b, h, s, d = params["batch"], params["heads"], params["seq"], params["head_dim"]
        full = 4.0 * b * h * s * s * d
        return full / 2 if params["causal"] else full

    def bytes(self, params, itemsize):
        # q, k, v read once and out written once; the S x S matrix never needs to touch memory
        b, h, s, d = params["batch"], params["heads"], params["seq"], params["head_dim"]
        return 4.0 * b * h * s * d * itemsize


SPEC = AttentionSpec()
