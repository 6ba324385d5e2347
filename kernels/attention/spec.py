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


def _weights(q: np.ndarray, k: np.ndarray, causal: bool) -> np.ndarray:
    """The [S, S] attention weights P = softmax(q k^T / sqrt(D) + mask) of one head."""
    s_len = q.shape[0]
    scores = (q @ k.T) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        scores[np.triu(np.ones((s_len, s_len), dtype=bool), k=1)] = -np.inf
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights


class AttentionSpec(KernelSpec):
    defaults = {"batch": 1, "heads": 8, "seq": 1024, "head_dim": 64, "causal": False}
    inputs = ("q", "k", "v")
    static_params = ("causal",)
    grad_inputs = ("q", "k", "v")

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

    def grad_tolerance(self, params, dtype, name):
        """float32: dv = P^T dO and dk = scale dS^T q sum over up to S queries, dq = scale dS k
        over up to S keys, like the forward's P.V, and dS = P (dP - rowsum(dO * O)) adds one
        cancellation: the forward's bound with the sums' sqrt(S) term doubled. bf16/fp16:
        computed in float32 and rounded once is ~0.2 eps; flash kernels also round P and dS to
        the input dtype for the tensor-core dots (and Delta is taken from the rounded output),
        which simulated in float64 gives 0.30-0.34 eps at S = 1024-4096, D = 64 and 128: the
        bound is 2 eps, as for the forward."""
        if dtype in ("bfloat16", "float16"):
            return Tolerance(2.0)
        s, d = params["seq"], params["head_dim"]
        return Tolerance(math.sqrt(s) + 0.5 * LOGIT_STD * math.sqrt(d) + 8.0)

    def make_inputs(self, params, rng):
        shape = (params["batch"], params["heads"], params["seq"], params["head_dim"])
        return {"q": LOGIT_STD * rng.standard_normal(shape),
                "k": rng.standard_normal(shape),
                "v": rng.standard_normal(shape)}

    def reference(self, inputs, params):
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        out = np.empty(q.shape[:3] + v.shape[3:])
        for b in range(q.shape[0]):  # one [S, S] float64 score matrix at a time
            for h in range(q.shape[1]):
                out[b, h] = _weights(q[b, h], k[b, h], params["causal"]) @ v[b, h]
        return (out,)

    def reference_backward(self, inputs, params, grad_outputs):
        # with P = softmax(S), S = scale q k^T (+ mask), O = P v and cotangent dO:
        #   dv = P^T dO,  dP = dO v^T,  dS = P * (dP - rowsum(dO * O)),
        #   dq = scale dS k,  dk = scale dS^T q
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        (g,) = grad_outputs
        scale = 1.0 / math.sqrt(q.shape[-1])
        dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
        for b in range(q.shape[0]):
            for h in range(q.shape[1]):
                p = _weights(q[b, h], k[b, h], params["causal"])
                go = g[b, h]
                dv[b, h] = p.T @ go
                dp = go @ v[b, h].T
                ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
                dq[b, h] = scale * (ds @ k[b, h])
                dk[b, h] = scale * (ds.T @ q[b, h])
        return dq, dk, dv

    def backward_flops(self, params):
        # five S x S x D products (q k^T recomputed, dO v^T, P^T dO, dS k, dS^T q), 2.5x the
        # forward's two, halved by the causal mask like the forward
        return 2.5 * self.flops(params)

    def backward_bytes(self, params, itemsize):
        # read q, k, v, O, dO and the float32 row statistic; write dq, dk, dv
        b, h, s, d = params["batch"], params["heads"], params["seq"], params["head_dim"]
        return float(8 * b * h * s * d * itemsize + b * h * s * max(itemsize, 4))

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
