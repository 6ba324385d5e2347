"""Row-wise softmax over the last axis: out[i, j] = exp(x[i, j] - max_j x[i]) / sum_j exp(...).

Inputs are standard normal scaled by 4, so rows have a clear maximum and exp() spans several
decades (a softmax of near-constant rows would hide errors in the normalisation).

Error model: each output is exp() (about one rounding) divided by its row's sum, so the sum's
relative error is shared by the whole row and dominates. A float32 sum of n terms, accumulated
sequentially in a few vector lanes as most CPU kernels do, is off by ~0.3 sqrt(n) eps of its
value (round-off of a growing partial sum, a random walk); pairwise or float64 sums much less.
The float32 (and float64) bound is 8 + 0.5 sqrt(cols) eps: 19 at 512 columns, 40 at 4096, 98
at 32768. Measured (float32): NumPy, numba (float64 sum) and JAX 0.2-0.9 eps at every width;
torch.softmax's fused CPU kernel 0.9, 3.6 and 28 eps at 512, 4096 and 32768 columns (under a
fixed 16 eps it failed the 32768-wide rows of cpu.toml). bf16/fp16 outputs computed in float32
and rounded once: 2 eps."""

import math

import numpy as np

from kernbench import KernelSpec, Tolerance


class SoftmaxSpec(KernelSpec):
    defaults = {"rows": 1024, "cols": 1024}
    inputs = ("x",)
    grad_inputs = ("x",)
    def tolerance(self, params, dtype):
        if dtype in ("bfloat16", "float16"):
            return Tolerance(2)
        return Tolerance(8 + 0.5 * math.sqrt(params["cols"]))

    def check(self, params):
        for key in ("rows", "cols"):
            if params[key] < 1:
                raise ValueError(f"{key} must be at least 1")

    def make_inputs(self, params, rng):
        return {"x": 4.0 * rng.standard_normal((params["rows"], params["cols"]))}

    def reference(self, inputs, params):
        x = inputs["x"]
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True),)

    def reference_backward(self, inputs, params, grad_outputs):
        # d/dx <softmax(x), g> = y * (g - sum_j g_j y_j), row by row
        (y,) = self.reference(inputs, params)
        (g,) = grad_outputs
        return (y * (g - (g * y).sum(axis=-1, keepdims=True)),)

    def backward_flops(self, params):
        return 4.0 * params["rows"] * params["cols"]  # product, row sum, subtract, multiply

    def backward_bytes(self, params, itemsize):
        return 3.0 * params["rows"] * params["cols"] * itemsize  # read y and g, write dx

    def flops(self, params):
        # max, subtract, exp, sum, divide: five operations per element
        return 5.0 * params["rows"] * params["cols"]

    def bytes(self, params, itemsize):
        return 2.0 * params["rows"] * params["cols"] * itemsize


SPEC = SoftmaxSpec()
