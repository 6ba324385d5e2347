"""Binary sigmoid focal loss (Lin et al., 2017, "Focal Loss for Dense Object Detection"), mean
over every element, as torchvision.ops.sigmoid_focal_loss(..., reduction="mean"):

    p_t     = sigmoid(x) if t = 1 else 1 - sigmoid(x)
    alpha_t = alpha      if t = 1 else 1 - alpha
    FL      = -alpha_t (1 - p_t)^gamma log(p_t)            loss = mean over all elements

logits and targets are [rows, classes] (a detection head: anchors x classes). Targets are FLOAT
inputs holding exactly 0.0 or 1.0 (torchvision's convention; both values are exact in every
format, so casting them to the case dtype changes nothing); alpha in [0, 1] and gamma >= 0 are
static. The output `loss` is a 0-d array in the logits' dtype; backends compute in float32
(float64 for float64 inputs) and round once.

Stability: with x_t = x if t = 1 else -x, log(p_t) = -softplus(-x_t) and 1 - p_t =
sigmoid(-x_t), both computed from exp(-|x_t|) and log1p, never as log(sigmoid(x)): in float32
log(1 - sigmoid(x)) is log(0) = -inf once x > ~17, and log(sigmoid(x)) once x < ~-104.

Inputs: logits 2 N(0, 1) - 1, raised by 2 where the target is 1 (about 10% of the targets, as
in a detection head), so the loss has both easy and hard examples and swapping alpha, dropping
the modulating factor or using the wrong p_t is a large error. Every fourth row is multiplied by
`logit_scale` (default 1): at 5e3 those rows reach |x| ~ 1e4, where the loss of a confidently
wrong element is alpha_t |x| and a naive log(sigmoid) gives inf.

Tolerance. Each term carries a few roundings (exp, log1p, the power), and the mean is a sum of
rows x classes positive terms: float32 pairwise or tree sums (NumPy, torch, Triton) add
O(log count) eps, a vectorised sequential float32 sum about sqrt(count / lanes) / 4 eps (the
reduction torch.compile generates on the CPU measured 28 eps at 65536 x 80). The float32 (and
float64, in its own eps) bound is 16 + sqrt(count) / 32 eps (87 eps, 5e-6, at 65536 x 80); a
loss off by 1e-4 fails. A low-precision loss is rounded once from float32: at most half an eps
(one eps under the Triton interpreter, which truncates): Tolerance(2).

Backward, from the stable form. With z = -x_t = (1 - 2t) x (the logit of the wrong answer),
s = sigmoid(z) = 1 - p_t, p_t = sigmoid(-z) and ce = softplus(z) = -log(p_t), the loss of one
element is alpha_t s^gamma ce, and since ds/dz = s p_t and d ce/dz = s,

    d/dz [alpha_t s^gamma ce] = alpha_t s^gamma (gamma p_t ce + s)
    d logits = (1 - 2t) alpha_t s^gamma (gamma p_t ce + s) g / count

with no negative power of s (so gamma < 1 is fine at s -> 0) and a sum of positive terms (no
cancellation). In float64 it is computed from the softplus values: s^gamma =
exp(-gamma softplus(-z)), p_t = exp(-ce); at |x| = 1e4 it is alpha_t g / count for a confidently
wrong element and 0 for a confident right one. Nothing beyond the inputs needs saving. Each
gradient is elementwise with a few roundings: Tolerance(16) in float32 (and float64, in its own
eps); low-precision gradients are computed in float32 and rounded once: Tolerance(2).
"""

import math

import numpy as np

from kernbench import KernelSpec, Tolerance

POSITIVE_FRACTION = 0.1


class FocalLossSpec(KernelSpec):
    defaults = {"rows": 65536, "classes": 80, "alpha": 0.25, "gamma": 2.0, "logit_scale": 1.0}
    inputs = ("logits", "targets")
    outputs = ("loss",)
    static_params = ("alpha", "gamma")
    grad_inputs = ("logits",)

    def check(self, params):
        for key in ("rows", "classes"):
            if params[key] < 1:
                raise ValueError(f"{key} must be at least 1")
        if not 0.0 <= params["alpha"] <= 1.0:
            raise ValueError("alpha must be in [0, 1]")
        if not (math.isfinite(params["gamma"]) and params["gamma"] >= 0):
            raise ValueError("gamma must be a finite number >= 0")
        if not (math.isfinite(params["logit_scale"]) and params["logit_scale"] > 0):
            raise ValueError("logit_scale must be a positive finite number")

    def tolerance(self, params, dtype):
        if dtype in ("bfloat16", "float16"):
            return Tolerance(2)
        return Tolerance(16 + math.sqrt(params["rows"] * params["classes"]) / 32)

    def grad_tolerance(self, params, dtype, name):
        return Tolerance(2) if dtype in ("bfloat16", "float16") else Tolerance(16)

    def make_inputs(self, params, rng):
        shape = (params["rows"], params["classes"])
        targets = (rng.random(shape) < POSITIVE_FRACTION).astype(np.float64)
        logits = 2.0 * rng.standard_normal(shape) - 1.0 + 2.0 * targets
        if params["logit_scale"] != 1.0:
            logits[::4] *= params["logit_scale"]
        return {"logits": logits, "targets": targets}

    def reference(self, inputs, params):
        x, positive = inputs["logits"], inputs["targets"] == 1.0
        alpha, gamma = params["alpha"], params["gamma"]
        x_t = np.where(positive, x, -x)  # p_t = sigmoid(x_t)
        log_p_t = -np.logaddexp(0.0, -x_t)
        one_minus_p_t = np.exp(-np.logaddexp(0.0, x_t))  # sigmoid(-x_t)
        alpha_t = np.where(positive, alpha, 1.0 - alpha)
        return (np.asarray((-alpha_t * one_minus_p_t ** gamma * log_p_t).mean()),)

    def reference_backward(self, inputs, params, grad_outputs):
        x, positive = inputs["logits"], inputs["targets"] == 1.0
        alpha, gamma = params["alpha"], params["gamma"]
        (g,) = grad_outputs
        z = np.where(positive, -x, x)
        ce = np.logaddexp(0.0, z)  # softplus(z) = -log(p_t)
        softplus_neg = np.logaddexp(0.0, -z)  # -log(s)
        s, p_t = np.exp(-softplus_neg), np.exp(-ce)
        dz = np.exp(-gamma * softplus_neg) * (gamma * p_t * ce + s)
        scale = np.where(positive, -alpha, 1.0 - alpha) * (float(g) / x.size)
        return (scale * dz,)

    def backward_flops(self, params):
        # per element, in the forward's convention: z, |z|, exp, log1p, softplus (max, add: 2),
        # s and p_t (3), s^gamma, gamma p_t ce + s (3), alpha_t with the sign and g / N (1),
        # s^gamma times the bracket and times alpha_t (2): 16 operations
        return 16.0 * params["rows"] * params["classes"]

    def backward_bytes(self, params, itemsize):
        # read logits, targets and g; write d logits
        return float(3 * params["rows"] * params["classes"] + 1) * itemsize

    def flops(self, params):
        # per element: sign flip, |.|, exp, log1p, max, add (softplus), sigmoid (add, divide),
        # power, alpha_t select, two multiplies, the sum: about 13 operations
        return 13.0 * params["rows"] * params["classes"]

    def bytes(self, params, itemsize):
        return float(2 * params["rows"] * params["classes"] + 1) * itemsize


SPEC = FocalLossSpec()
