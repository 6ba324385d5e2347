"""Rotary position embedding (Su et al., RoFormer) applied to q [batch, heads, seq, head_dim]
in the half-rotation layout of GPT-NeoX and Llama (`rotate_half`): dimension i is paired with
i + D/2 (not with its neighbour, as in the interleaved layout of the original Meta code):

    out[..., :D/2] = q1 * cos - q2 * sin
    out[..., D/2:] = q2 * cos + q1 * sin        q1 = q[..., :D/2], q2 = q[..., D/2:]

with angle[s, i] = s * theta ** (-2i / D) for position s and frequency i < D/2.

The cos/sin tables are INPUTS, `cos` and `sin` of shape [seq, head_dim/2], as models pass them
(a rotary cache built once and sliced per step; HF's Llama passes them as [seq, D] with the two
halves duplicated; flash-attn's apply_rotary takes [seq, D/2]). The kernel then only streams q
and the tables: memory-bound, and bytes() counts the tables (read once). `theta` (the base,
10000 in Llama-2, 500000 in Llama-3) is therefore a parameter of make_inputs, not of forward.
Like HF's Llama, the tables arrive in the activation dtype (bf16 in a bf16 model); the
reference uses them as the kernel saw them, so the figures measure the rotation alone.

Tolerance: two products and a sum per element, no reduction: 8 eps in float32, 2 in bfloat16
(computed in fp32, rounded once).

Backward: only q is differentiated (the tables are a cache of constants). The map is a rotation
of each pair (q1, q2) by angle, so its vector-Jacobian product is the transposed rotation, the
rotation by -angle, applied to the cotangent g:

    d_q[..., :D/2] = g1 * cos + g2 * sin
    d_q[..., D/2:] = g2 * cos - g1 * sin

A backward kernel saves nothing but the tables (no activation at all), reads g once and writes
d_q once: the same cost as the forward, and the same tolerance."""

import numpy as np

from kernbench import KernelSpec, Tolerance


def rope_tables(seq: int, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of angle[s, i] = s * theta**(-2i/D), float64, shape [seq, head_dim/2]."""
    inv_freq = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angle = np.outer(np.arange(seq, dtype=np.float64), inv_freq)
    return np.cos(angle), np.sin(angle)


class RopeSpec(KernelSpec):
    defaults = {"batch": 1, "heads": 32, "seq": 2048, "head_dim": 128, "theta": 10000.0}
    inputs = ("q", "cos", "sin")
    grad_inputs = ("q",)
    tolerances = {
        "float64": Tolerance(16),
        "float32": Tolerance(8),
        "float16": Tolerance(2),
        "bfloat16": Tolerance(2),
    }

    def check(self, params):
        for key in ("batch", "heads", "seq", "head_dim"):
            if params[key] < 1:
                raise ValueError(f"{key} must be at least 1")
        if params["head_dim"] % 2:
            raise ValueError(f"head_dim must be even (it is split into two halves), "
                             f"not {params['head_dim']}")
        if not params["theta"] > 1.0:
            raise ValueError(f"theta must be > 1, not {params['theta']}")

    def make_inputs(self, params, rng):
        b, h, s, d = params["batch"], params["heads"], params["seq"], params["head_dim"]
        cos, sin = rope_tables(s, d, params["theta"])
        return {"q": rng.standard_normal((b, h, s, d)), "cos": cos, "sin": sin}

    def reference(self, inputs, params):
        q, cos, sin = inputs["q"], inputs["cos"], inputs["sin"]
        half = q.shape[-1] // 2
        q1, q2 = q[..., :half], q[..., half:]
        return (np.concatenate([q1 * cos - q2 * sin, q2 * cos + q1 * sin], axis=-1),)

    def reference_backward(self, inputs, params, grad_outputs):
        (g,) = grad_outputs
        cos, sin = inputs["cos"], inputs["sin"]
        half = g.shape[-1] // 2
        g1, g2 = g[..., :half], g[..., half:]
        return (np.concatenate([g1 * cos + g2 * sin, g2 * cos - g1 * sin], axis=-1),)

    def backward_flops(self, params):
        return self.flops(params)  # the same rotation, by -angle

    def backward_bytes(self, params, itemsize):
        return self.bytes(params, itemsize)  # read g and the tables, write d_q

    def flops(self, params):
        # per output element: two multiplies and one add or subtract
        return 3.0 * params["batch"] * params["heads"] * params["seq"] * params["head_dim"]

    def bytes(self, params, itemsize):
        q = params["batch"] * params["heads"] * params["seq"] * params["head_dim"]
        tables = params["seq"] * params["head_dim"]  # cos and sin, [seq, D/2] each
        return float(2 * q + tables) * itemsize


SPEC = RopeSpec()
