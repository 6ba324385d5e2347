"""NumPy AdamW step, in place (as an optimizer updates its state): in-place ufuncs with one
scratch buffer, bias corrections folded into two scalars (torch's step_size and
bias_correction2_sqrt). float16 state is updated through a float32 copy: (1 - beta2) grad^2
would underflow in half precision."""

import math

import numpy as np


def _update(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step):
    step_size = lr / (1.0 - beta1 ** step)
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    param *= 1.0 - lr * weight_decay
    exp_avg *= beta1
    tmp = grad * (1.0 - beta1)
    exp_avg += tmp
    exp_avg_sq *= beta2
    np.multiply(grad, grad, out=tmp)
    tmp *= 1.0 - beta2
    exp_avg_sq += tmp
    np.sqrt(exp_avg_sq, out=tmp)
    tmp /= bc2_sqrt
    tmp += eps
    np.divide(exp_avg, tmp, out=tmp)
    tmp *= step_size
    param -= tmp


def forward(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
            *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
            step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hyper = (lr, beta1, beta2, eps, weight_decay, step)
    if param.dtype.itemsize >= 4:
        _update(param, grad, exp_avg, exp_avg_sq, *hyper)
        return param, exp_avg, exp_avg_sq
    work = [a.astype(np.float32) for a in (param, grad, exp_avg, exp_avg_sq)]
    _update(*work, *hyper)
    for dst, src in zip((param, exp_avg, exp_avg_sq), (work[0], work[2], work[3])):
        dst[...] = src
    return param, exp_avg, exp_avg_sq
