"""Softmax spec, reused by a deliberately broken kernel (report fixture)."""

import numpy as np

from kernbench import KernelSpec, Tolerance


class SoftmaxSpec(KernelSpec):
    defaults = {"rows": 1024, "cols": 1024}
    inputs = ("x",)
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

    def flops(self, params):
        # max, subtract, exp, sum, divide: five operations per element
        return 5.0 * params["rows"] * params["cols"]

    def bytes(self, params, itemsize):
        return 2.0 * params["rows"] * params["cols"] * itemsize


SPEC = SoftmaxSpec()
