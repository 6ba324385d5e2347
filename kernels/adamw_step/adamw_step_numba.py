"""numba AdamW step: one fused in-place pass (read four values, write three per element), the
elements in parallel (prange), each update computed in float64 and rounded once on store.
The bias corrections are folded into two scalars outside the loop."""

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=False)
def _adamw(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, decay, step_size,
           bc2_sqrt):
    for i in prange(param.size):
        g = np.float64(grad[i])
        m = beta1 * np.float64(exp_avg[i]) + (1.0 - beta1) * g
        v = beta2 * np.float64(exp_avg_sq[i]) + (1.0 - beta2) * g * g
        p = np.float64(param[i]) * decay
        param[i] = p - step_size * m / (math.sqrt(v) / bc2_sqrt + eps)
        exp_avg[i] = m
        exp_avg_sq[i] = v


def forward(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray,
            *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
            step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    step_size = lr / (1.0 - beta1 ** step)
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    _adamw(param.reshape(-1), grad.reshape(-1), exp_avg.reshape(-1), exp_avg_sq.reshape(-1),
           lr, beta1, beta2, eps, 1.0 - lr * weight_decay, step_size, bc2_sqrt)
    return param, exp_avg, exp_avg_sq
