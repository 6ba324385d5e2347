"""numba-cuda AdamW step: one fused in-place elementwise kernel (what apex's and torch's fused
CUDA optimizers do for one tensor), as the numpy and Triton versions: param, exp_avg and
exp_avg_sq are updated in place and returned, grad is only read. A block of
256 threads takes tiles of 1024 elements: each thread first loads its 4 elements of the four
tensors (16 coalesced loads in flight), then updates and stores the three states, so each
tensor is read once and each state written once (7 accesses per element). numba cannot mark
the arrays noalias, so without the explicit loads-first order each load would wait behind the
previous store. The tiles are walked by a grid-stride loop (one tile per block at any
realistic size).

The hyperparameters are computed once on the host in float64, with the bias corrections folded
in (step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t), decay = 1 - lr * wd,
1 - beta1, 1 - beta2; torch's and numpy's forms), and passed as kernel scalars rounded once to
the state's precision (np.float32 for float32 state, so the float32 kernel has no float64
arithmetic; float64 state keeps full float64 scalars). Computing 1 - beta2^t in float32 on the
device would cancel (1 - 0.999^10 ~ 0.01 loses ~7 bits) and redo per thread what is constant
per launch; being scalar parameters, they need no host-to-device copy (Triton's Python floats
would be fp32 whatever the state, hence its small float64 tensor). No fastmath: IEEE sqrt and
division, as torch's fused kernel (compute is free here: 28 bytes of traffic per element)."""

import math

import numpy as np
import torch
from numba import cuda

from kernbench.cuda_launch import launch, per_dtype

THREADS = 256
UNROLL = 4  # elements per thread per tile, loaded before any is stored
TILE = THREADS * UNROLL
MAX_GRID = 2**31 - 1
_SCALAR = {torch.float32: np.float32, torch.float64: np.float64}


@per_dtype
def _kernel(T):
    @cuda.jit
    def adamw(param, grad, exp_avg, exp_avg_sq, beta1, beta2, one_m_beta1, one_m_beta2, eps,
              decay, step_size, bc2_sqrt):
        n = param.shape[0]
        vp = cuda.local.array(UNROLL, T)
        vg = cuda.local.array(UNROLL, T)
        vm = cuda.local.array(UNROLL, T)
        vv = cuda.local.array(UNROLL, T)
        for base in range(cuda.blockIdx.x * TILE + cuda.threadIdx.x, n, cuda.gridDim.x * TILE):
            for k in range(UNROLL):
                i = base + k * THREADS
                if i < n:
                    vp[k] = param[i]
                    vg[k] = grad[i]
                    vm[k] = exp_avg[i]
                    vv[k] = exp_avg_sq[i]
            for k in range(UNROLL):
                i = base + k * THREADS
                if i < n:
                    g = vg[k]
                    m = beta1 * vm[k] + one_m_beta1 * g
                    v = beta2 * vv[k] + one_m_beta2 * g * g
                    denom = math.sqrt(v) / bc2_sqrt + eps
                    param[i] = vp[k] * decay - step_size * (m / denom)
                    exp_avg[i] = m
                    exp_avg_sq[i] = v

    return adamw


def forward(param, grad, exp_avg, exp_avg_sq, *, lr: float, beta1: float, beta2: float,
            eps: float, weight_decay: float, step: int):
    for name, t in (("param", param), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)):
        if not t.is_contiguous():
            raise ValueError(f"adamw_step (numba_cuda) updates {name} in place: it must be "
                             f"contiguous")
    grad = grad.contiguous()  # only read
    n = param.numel()
    if n:
        kernel = _kernel(param.dtype)  # (TypeError for a dtype other than float32 / float64)
        scalar = _SCALAR[param.dtype]
        hyper = (beta1, beta2, 1.0 - beta1, 1.0 - beta2, eps, 1.0 - lr * weight_decay,
                 lr / (1.0 - beta1 ** step), math.sqrt(1.0 - beta2 ** step))
        grid = min(-(-n // TILE), MAX_GRID)
        launch(kernel, grid, THREADS, param.view(-1), grad.view(-1),
               exp_avg.view(-1), exp_avg_sq.view(-1), *(scalar(h) for h in hyper))
    return param, exp_avg, exp_avg_sq
