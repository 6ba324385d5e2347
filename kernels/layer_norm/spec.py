"""Layer normalisation over the last axis (Ba et al., 2016), as in torch.nn.LayerNorm:

    mean_i = (1/H) sum_j x[i, j]          var_i = (1/H) sum_j (x[i, j] - mean_i)^2   (biased)
    out[i, j] = (x[i, j] - mean_i) / sqrt(var_i + eps) * weight[j] + bias[j]

x is [rows, hidden]; weight and bias are [hidden]; eps is static (a keyword argument).

Inputs are drawn so that errors show: each row has its own mean offset (uniform in [-3, 3]) and
spread (1.5 N(0, 1)), so subtracting the mean matters and a one-pass E[x^2] - E[x]^2 variance in
float32 loses visible digits; weight is 1 + 0.25 N(0, 1) and bias 0.5 N(0, 1), so forgetting
either, or swapping them, is a large error.

Tolerance. The output is elementwise once mean and rstd are known. Each output value is rounded
once (about a third of an eps in rel_l2), and the float32 statistics carry the summation error of
a length-H reduction: a tree or pairwise sum gives O(log H) eps, a sequential vectorised float32
sum about sqrt(H / lanes) eps. That error enters every output of the row through mean/sigma, so
the bound for float32 (and float64, in its own eps) is 8 + sqrt(H) / 2 eps: it covers a single
sequential accumulator (about 0.3 sqrt(H) eps here) and still fails torch.var's unbiased
default (a 1/(2H) relative error, 1000 eps at H = 4096). Low-precision outputs are rounded once
from a float32 computation (~0.3 eps rel_l2): Tolerance(2), as for other row-wise kernels.

Backward. With xhat = (x - mean) rstd and a cotangent g, dxhat = g weight and

    dx = rstd (dxhat - mean_j(dxhat) - xhat mean_j(dxhat xhat))      (per row)
    dweight = sum_rows(g xhat)        dbias = sum_rows(g)

A kernel saves x, weight and the per-row mean and rstd (8 bytes a row in float32), not xhat.
dx is row-wise like the forward, with two length-H reductions: the forward's bound. dweight and
dbias are sums over all rows of terms of random sign: a sequential float32 sum of R such terms
is off by about sqrt(R) eps relative to its result, and xhat carries the forward's error, so
their float32 bound is 8 + (sqrt(R) + sqrt(H)) / 2 eps. Low-precision gradients are computed in
float32 and rounded once: Tolerance(2).
"""

import math

import numpy as np

from kernbench import KernelSpec, Tolerance


class LayerNormSpec(KernelSpec):
    defaults = {"rows": 4096, "hidden": 4096, "eps": 1e-5}
    inputs = ("x", "weight", "bias")
    static_params = ("eps",)
    grad_inputs = ("x", "weight", "bias")

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
        offset = rng.uniform(-3.0, 3.0, (rows, 1))
        return {
            "x": offset + 1.5 * rng.standard_normal((rows, hidden)),
            "weight": 1.0 + 0.25 * rng.standard_normal(hidden),
            "bias": 0.5 * rng.standard_normal(hidden),
        }

    def reference(self, inputs, params):
        x = inputs["x"]
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        out = (x - mean) / np.sqrt(var + params["eps"]) * inputs["weight"] + inputs["bias"]
        return (out,)

    def reference_backward(self, inputs, params, grad_outputs):
        x, weight = inputs["x"], inputs["weight"]
        (g,) = grad_outputs
        mean = x.mean(axis=-1, keepdims=True)
        rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + params["eps"])
        xhat = (x - mean) * rstd
        dxhat = g * weight
        dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                     - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
        return dx, (g * xhat).sum(axis=0), g.sum(axis=0)

    def backward_flops(self, params):
        # per element: xhat (2), dxhat (1), the two row sums (3), dx (4), dweight (2), dbias (1)
        return 13.0 * params["rows"] * params["hidden"]

    def backward_bytes(self, params, itemsize):
        # read x, g, weight and the float32 (float64) mean and rstd; write dx, dweight, dbias
        rows, hidden = params["rows"], params["hidden"]
        return float((3 * rows * hidden + 3 * hidden) * itemsize + 2 * rows * max(itemsize, 4))

    def flops(self, params):
        # mean (1 add), centre + square + add for the variance (3), then per output:
        # centre, scale by rstd, weight, bias (4): eight operations per element
        return 8.0 * params["rows"] * params["hidden"]

    def bytes(self, params, itemsize):
        rows, hidden = params["rows"], params["hidden"]
        return float(2 * rows * hidden + 2 * hidden) * itemsize


SPEC = LayerNormSpec()
