"""SwiGLU gate of the Llama MLP: out = silu(a) * b = a * sigmoid(a) * b, elementwise, on two
inputs of the same shape [rows, hidden] (a = x @ W_gate, b = x @ W_up; hidden is 11008 in
Llama-2-7B, 14336 in Llama-3-8B).

Inputs: `a` is standard normal scaled by 3, so the saturated negative tail (silu -> 0), the
curved region around 0 and the linear positive side all carry weight in the error; `b` is
standard normal. Memory-bound: two reads and one write per element.

Tolerance: one exp and a few roundings per element, no reduction, so the error does not grow
with the shape. float32 allows 8 eps; bfloat16 2 eps (an fp32 computation rounded once gives
~0.3 eps; the library composition `F.silu(a) * b` rounds twice in bf16, ~0.4 eps).

Backward (both inputs): with s = sigmoid(a),

    d_a = g * b * silu'(a),   silu'(a) = s * (1 + a * (1 - s))
    d_b = g * silu(a) = g * a * s

Elementwise again, so the forward tolerances hold. A fused backward saves only a and b and
recomputes s (Liger and Unsloth do this): a framework that saves silu(a) as well keeps a third
array. The reference takes 1 - s as sigmoid(-a), which has no cancellation for large a."""

import numpy as np

from kernbench import KernelSpec, Tolerance


class SwigluSpec(KernelSpec):
    defaults = {"rows": 1024, "hidden": 11008}
    inputs = ("a", "b")
    grad_inputs = ("a", "b")
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

    def reference_backward(self, inputs, params, grad_outputs):
        a, b = inputs["a"], inputs["b"]
        (g,) = grad_outputs
        with np.errstate(over="ignore"):
            s = 1.0 / (1.0 + np.exp(-a))  # sigmoid(a)
            s_neg = 1.0 / (1.0 + np.exp(a))  # 1 - sigmoid(a), without cancellation
        return (g * b * s * (1.0 + a * s_neg), g * a * s)

    def backward_flops(self, params):
        # sigmoid (exp, add, divide), a * (1 - s) + 1 (3), times s, g and b (3) for d_a;
        # a * s times g (2) for d_b
        return 11.0 * params["rows"] * params["hidden"]

    def backward_bytes(self, params, itemsize):
        # read a, b and g; write d_a and d_b
        return 5.0 * params["rows"] * params["hidden"] * itemsize

    def flops(self, params):
        # exp, add, divide (silu) and the multiply by b; the negation folds into exp
        return 4.0 * params["rows"] * params["hidden"]

    def bytes(self, params, itemsize):
        return 3.0 * params["rows"] * params["hidden"] * itemsize


SPEC = SwigluSpec()
