"""SwiGLU gate of the Llama MLP: out = silu(a) * b = a * sigmoid(a) * b, elementwise, on two
inputs of the same shape [rows, hidden] (a = x @ W_gate, b = x @ W_up; hidden is 11008 in
Llama-2-7B, 14336 in Llama-3-8B).

Inputs: `a` is standard normal scaled by 3, so the saturated negative tail (silu -> 0), the
curved region around 0 and the linear positive side all carry weight in the error; `b` is
standard normal. Memory-bound: two reads and one write per element.

Tolerance: one exp and a few roundings per element, no reduction, so the error does not grow
with the shape. float32 allows 8 eps; bfloat16 2 eps (an fp32 computation rounded once gives
~0.3 eps; the library composition `F.silu(a) * b` rounds twice in bf16, ~0.4 eps)."""

import numpy as np

from kernbench import KernelSpec, Tolerance


class SwigluSpec(KernelSpec):
    defaults = {"rows": 1024, "hidden": 11008}
    inputs = ("a", "b")
    tolerances = {
        "float64": Tolerance(16),
        "float32": Tolerance(8),
        "float16": Tolerance(2),
        "bfloat16": Tolerance(2),
    }

    def check(self, params):
        for key in ("rows", "hidden"):
            if params[key] < 1:
                raise ValueError(f"{key} must be at least 1")

    def make_inputs(self, params, rng):
        shape = (params["rows"], params["hidden"])
        return {"a": 3.0 * rng.standard_normal(shape), "b": rng.standard_normal(shape)}

    def reference(self, inputs, params):
        a, b = inputs["a"], inputs["b"]
        # sigmoid(a) = 1 / (1 + exp(-a)); exp overflows to inf for a < -709, giving 0 (right)
        with np.errstate(over="ignore"):
            return (a / (1.0 + np.exp(-a)) * b,)

    def flops(self, params):
        # exp, add, divide (silu) and the multiply by b; the negation folds into exp
        return 4.0 * params["rows"] * params["hidden"]

    def bytes(self, params, itemsize):
        return 3.0 * params["rows"] * params["hidden"] * itemsize


SPEC = SwigluSpec()
