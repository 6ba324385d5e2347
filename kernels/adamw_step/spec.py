"""One AdamW step (Loshchilov and Hutter, "Decoupled Weight Decay Regularization", 2019) with
bias correction, exactly as torch.optim.AdamW defines it (amsgrad off, maximize off):

    param      <- param * (1 - lr * weight_decay)              decoupled weight decay, first
    exp_avg    <- beta1 * exp_avg    + (1 - beta1) * grad
    exp_avg_sq <- beta2 * exp_avg_sq + (1 - beta2) * grad^2
    m_hat = exp_avg / (1 - beta1^step)      v_hat = exp_avg_sq / (1 - beta2^step)
    param      <- param - lr * m_hat / (sqrt(v_hat) + eps)       eps outside the sqrt

`step` is the step number t >= 1 *of this update* (torch increments its counter before the
update, so its state holds t - 1 beforehand). Inputs param, grad, exp_avg, exp_avg_sq are flat
[numel] buffers (what the fused and multi-tensor optimizers see); outputs are the three updated
tensors, all checked. Backends update in place where their framework does (numpy, numba, torch
with torch._fused_adamw_ / the hand-written in-place ops, triton), and forward returns the
three (updated) tensors; jax returns new arrays.

Inputs are drawn like a layer's optimizer state part-way through training: param ~ 0.02 N(0,1)
(the usual init scale), grad ~ 1e-3 N(0,1), exp_avg ~ 1e-3 N(0,1), exp_avg_sq >= 0 as the mean
of three squared 1e-3 N(0,1) draws (some small, so eps matters somewhere). With lr = 1e-3
the step moves the weights by ~1% in relative L2 (2% at step 1), and wrong updates land far
outside the float32 tolerance of the outputs (tests/test_specs_elementwise.py): bias correction
forgotten ~3e4 x the tolerance, coupled L2 decay (Adam, not AdamW) ~1e4 x, eps inside the sqrt
~10 x, weight decay skipped ~5 x.

Tolerance: elementwise, a dozen operations, no reduction: 16 eps in float32. In bfloat16 every
output is rounded once from an fp32 computation: 2 eps (note: with bf16 params the update is
only a few ulps of the weight, which is why real training keeps fp32 master weights)."""

import numpy as np

from kernbench import KernelSpec, Tolerance


class AdamwStepSpec(KernelSpec):
    defaults = {"numel": 1 << 23, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                "weight_decay": 0.01, "step": 10}
    inputs = ("param", "grad", "exp_avg", "exp_avg_sq")
    outputs = ("param", "exp_avg", "exp_avg_sq")
    static_params = ("lr", "beta1", "beta2", "eps", "weight_decay", "step")
    tolerances = {
        "float64": Tolerance(64),
        "float32": Tolerance(16),
        "float16": Tolerance(2),
        "bfloat16": Tolerance(2),
    }

    def check(self, params):
        if params["numel"] < 1:
            raise ValueError("numel must be at least 1")
        if params["step"] < 1:
            raise ValueError(f"step must be >= 1 (the number of this update), "
                             f"not {params['step']}")
        for key in ("beta1", "beta2"):
            if not 0.0 <= params[key] < 1.0:
                raise ValueError(f"{key} must be in [0, 1), not {params[key]}")
        if not params["eps"] > 0.0:
            raise ValueError(f"eps must be > 0, not {params['eps']}")
        for key in ("lr", "weight_decay"):
            if not params[key] >= 0.0:
                raise ValueError(f"{key} must be >= 0, not {params[key]}")

    def make_inputs(self, params, rng):
        n = params["numel"]
        return {
            "param": 0.02 * rng.standard_normal(n),
            "grad": 1e-3 * rng.standard_normal(n),
            "exp_avg": 1e-3 * rng.standard_normal(n),
            "exp_avg_sq": 1e-6 * np.mean(rng.standard_normal((3, n)) ** 2, axis=0),
        }

    def reference(self, inputs, params):
        lr, b1, b2 = params["lr"], params["beta1"], params["beta2"]
        eps, wd, t = params["eps"], params["weight_decay"], params["step"]
        g = inputs["grad"]
        param = inputs["param"] * (1.0 - lr * wd)
        m = b1 * inputs["exp_avg"] + (1.0 - b1) * g
        v = b2 * inputs["exp_avg_sq"] + (1.0 - b2) * g * g
        m_hat = m / (1.0 - b1 ** t)
        v_hat = v / (1.0 - b2 ** t)
        param = param - lr * m_hat / (np.sqrt(v_hat) + eps)
        return (param, m, v)

    def flops(self, params):
        # decay 1, first moment 3, second moment 4, sqrt + bias-correction scale 2, + eps 1,
        # divide 1, scale by lr/bc1 1, subtract 1
        return 14.0 * params["numel"]

    def bytes(self, params, itemsize):
        return 7.0 * params["numel"] * itemsize  # four tensors read, three written


SPEC = AdamwStepSpec()
