"""Matrix product C = A @ B with A [m, k] and B [k, n].

The error of a length-k dot product grows with k (about sqrt(k) eps for random signs), so the
float32/float64 tolerance scales with sqrt(k). bfloat16 products are expected to accumulate in
float32 and round once: the error is then the final rounding, about a third of an eps."""

import math

from kernbench import KernelSpec, Tolerance


class MatmulSpec(KernelSpec):
    defaults = {"m": 512, "n": 512, "k": 512}
    inputs = ("a", "b")
    grad_inputs = ("a", "b")

    def check(self, params):
        for key in ("m", "n", "k"):
            if params[key] < 1:
                raise ValueError(f"{key} must be at least 1")

    def tolerance(self, params, dtype):
        if dtype in ("bfloat16", "float16"):
            return Tolerance(1.0)
        return Tolerance(4.0 * math.sqrt(params["k"]) + 8)

    def grad_tolerance(self, params, dtype, name):
        # dA = G @ B^T sums over n terms, dB = A^T @ G over m
        length = params["n"] if name == "a" else params["m"]
        if dtype in ("bfloat16", "float16"):
            return Tolerance(1.0)
        return Tolerance(4.0 * math.sqrt(length) + 8)

    def reference_backward(self, inputs, params, grad_outputs):
        (g,) = grad_outputs
        return (g @ inputs["b"].T, inputs["a"].T @ g)

    def backward_bytes(self, params, itemsize):
        m, n, k = params["m"], params["n"], params["k"]
        return float(2 * (m * k + k * n) + m * n) * itemsize  # read A, B, G; write dA, dB

    def make_inputs(self, params, rng):
        m, n, k = params["m"], params["n"], params["k"]
        return {"a": rng.standard_normal((m, k)), "b": rng.standard_normal((k, n))}

    def reference(self, inputs, params):
        return (inputs["a"] @ inputs["b"],)

    def flops(self, params):
        return 2.0 * params["m"] * params["n"] * params["k"]

    def bytes(self, params, itemsize):
        m, n, k = params["m"], params["n"], params["k"]
        return float(m * k + k * n + m * n) * itemsize


SPEC = MatmulSpec()
