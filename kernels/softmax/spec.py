"""Row-wise softmax over the last axis: out[i, j] = exp(x[i, j] - max_j x[i]) / sum_j exp(...).

Inputs are standard normal scaled by 4, so rows have a clear maximum and exp() spans several
decades (a softmax of near-constant rows would hide errors in the normalisation)."""

import numpy as np

from kernbench import KernelSpec, Tolerance


class SoftmaxSpec(KernelSpec):
    defaults = {"rows": 1024, "cols": 1024}
    inputs = ("x",)
    grad_inputs = ("x",)
    tolerances = {
        "float64": Tolerance(64),
        "float32": Tolerance(16),
        "float16": Tolerance(2),
        "bfloat16": Tolerance(2),
    }

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
