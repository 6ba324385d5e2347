"""RMS normalisation over the last axis (Zhang & Sennrich, 2019), as in Llama and F.rms_norm:

    out[i, j] = x[i, j] / sqrt((1/H) sum_k x[i, k]^2 + eps) * weight[j]

x is [rows, hidden], weight is [hidden]; eps is static. Low-precision inputs are computed in
float32 and rounded once (F.rms_norm's behaviour; Hugging Face's LlamaRMSNorm rounds the
normalised x to the input dtype before the weight multiply, a second rounding that still fits the
bfloat16 bound below).

Inputs: each row has its own mean offset (uniform in [-1, 1]) on top of 1.5 N(0, 1), so an
implementation that centres the row (layer norm's variance instead of the mean square) is
visibly wrong; weight is 1 + 0.25 N(0, 1), so Gemma's (1 + weight) convention or a forgotten
weight fails.

Tolerance: as for layer_norm. The float32 mean square is a length-H reduction whose error enters
every output of the row through rsqrt (O(log H) eps for tree sums, about sqrt(H) eps for a single
sequential float32 accumulator), so the float32 (and float64, in its own eps) bound is
8 + sqrt(H) / 2 eps; low-precision outputs rounded once from float32 get Tolerance(2).

Backward. With xhat = x rstd and a cotangent g, dxhat = g weight and

    dx = rstd (dxhat - xhat mean_j(dxhat xhat))      (per row)        dweight = sum_rows(g xhat)

A kernel saves x, weight and the per-row rstd (4 bytes a row in float32), not xhat. dx has the
forward's bound; dweight sums R terms of random sign over the rows (about sqrt(R) eps for a
sequential float32 sum) on top of xhat's error: 8 + (sqrt(R) + sqrt(H)) / 2 eps in float32.
Low-precision gradients are computed in float32 and rounded once: Tolerance(2).
"""

import math

import numpy as np

from kernbench import KernelSpec, Tolerance


class RmsNormSpec(KernelSpec):
    defaults = {"rows": 4096, "hidden": 4096, "eps": 1e-6}
    inputs = ("x", "weight")
    static_params = ("eps",)
    grad_inputs = ("x", "weight")

    def check(self, params):
        for key in ("rows", "hidden"):
            if params[key] < 1:
                raise ValueError(f"{key} must be at least 1")
        if not (math.isfinite(params["eps"]) and params["eps"] > 0):
            raise ValueError("eps must be a positive finite number")

    def tolerance(self, params, dtype):
        if dtype in ("bfloat16", "float16"):
            return Tolerance(2)
        return Tolerance(8 + 0.5 * math.sqrt(params["hidden"]))

    def grad_tolerance(self, params, dtype, name):
        if name == "x" or dtype in ("bfloat16", "float16"):
            return self.tolerance(params, dtype)
        return Tolerance(8 + 0.5 * (math.sqrt(params["rows"]) + math.sqrt(params["hidden"])))

    def make_inputs(self, params, rng):
        rows, hidden = params["rows"], params["hidden"]
        offset = rng.uniform(-1.0, 1.0, (rows, 1))
        return {
            "x": offset + 1.5 * rng.standard_normal((rows, hidden)),
            "weight": 1.0 + 0.25 * rng.standard_normal(hidden),
        }

    def reference(self, inputs, params):
        x = inputs["x"]
        ms = (x * x).mean(axis=-1, keepdims=True)
        return (x / np.sqrt(ms + params["eps"]) * inputs["weight"],)

    def reference_backward(self, inputs, params, grad_outputs):
        x, weight = inputs["x"], inputs["weight"]
        (g,) = grad_outputs
        rstd = 1.0 / np.sqrt((x * x).mean(axis=-1, keepdims=True) + params["eps"])
        xhat = x * rstd
        dxhat = g * weight
        dx = rstd * (dxhat - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
        return dx, (g * xhat).sum(axis=0)

    def backward_flops(self, params):
        # per element: xhat (1), dxhat (1), the row sum (2), dx (3), dweight (2)
        return 9.0 * params["rows"] * params["hidden"]

    def backward_bytes(self, params, itemsize):
        # read x, g, weight and the float32 (float64) rstd; write dx and dweight
        rows, hidden = params["rows"], params["hidden"]
        return float((3 * rows * hidden + 2 * hidden) * itemsize + rows * max(itemsize, 4))

    def flops(self, params):
        # square + add for the mean square (2), then scale by rstd and by weight (2)
        return 4.0 * params["rows"] * params["hidden"]

    def bytes(self, params, itemsize):
        rows, hidden = params["rows"], params["hidden"]
        return float(2 * rows * hidden + hidden) * itemsize


SPEC = RmsNormSpec()
