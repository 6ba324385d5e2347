"""Triton AdamW step: one fused in-place elementwise kernel (what apex/torch's fused CUDA
optimizers do for one tensor): each program loads BLOCK elements of param, grad, exp_avg,
exp_avg_sq, updates them in float32 (float64 stays float64) and stores the three states back,
rounding once. BLOCK=1024, 4 warps: memory-bound pointwise on an H100.

The hyperparameters, with the bias corrections folded in on the host (step_size =
lr / (1 - beta1^t), sqrt(1 - beta2^t), decay = 1 - lr * wd), reach the kernel as a small
float64 tensor rather than as scalar arguments: a compiled Triton kernel types Python float
arguments as fp32, which would round beta1 = 0.9 to 0.89999998 for float64 state. The tensor
is cached for the last set of values, so a steady-state step makes no host-to-device copy
(an lr schedule costs one 64-byte copy per step)."""

import math

import torch
import triton
import triton.language as tl

BLOCK = 1024
NUM_WARPS = 4

_cache: dict = {}


@triton.jit
def _adamw_kernel(p_ptr, g_ptr, m_ptr, v_ptr, hp_ptr, n, BLOCK: tl.constexpr):
    start = tl.program_id(0).to(tl.int64) * BLOCK
    offs = start + tl.arange(0, BLOCK)
    mask = offs < n
    ct = tl.float64 if p_ptr.dtype.element_ty == tl.float64 else tl.float32
    beta1 = tl.load(hp_ptr).to(ct)
    beta2 = tl.load(hp_ptr + 1).to(ct)
    eps = tl.load(hp_ptr + 2).to(ct)
    decay = tl.load(hp_ptr + 3).to(ct)
    step_size = tl.load(hp_ptr + 4).to(ct)
    bc2_sqrt = tl.load(hp_ptr + 5).to(ct)
    one_m_beta1 = tl.load(hp_ptr + 6).to(ct)
    one_m_beta2 = tl.load(hp_ptr + 7).to(ct)
    p = tl.load(p_ptr + offs, mask=mask, other=0.0).to(ct)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(ct)
    m = tl.load(m_ptr + offs, mask=mask, other=0.0).to(ct)
    v = tl.load(v_ptr + offs, mask=mask, other=0.0).to(ct)
    m = beta1 * m + one_m_beta1 * g
    v = beta2 * v + one_m_beta2 * g * g
    p = p * decay - step_size * m / (tl.sqrt(v) / bc2_sqrt + eps)
    tl.store(p_ptr + offs, p.to(p_ptr.dtype.element_ty), mask=mask)
    tl.store(m_ptr + offs, m.to(m_ptr.dtype.element_ty), mask=mask)
    tl.store(v_ptr + offs, v.to(v_ptr.dtype.element_ty), mask=mask)


def _hyper(device: torch.device, values: tuple[float, ...]) -> torch.Tensor:
    key = (str(device), values)
    if key not in _cache:
        _cache.clear()
        _cache[key] = torch.tensor(values, dtype=torch.float64, device=device)
    return _cache[key]


def forward(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor,
            exp_avg_sq: torch.Tensor, *, lr: float, beta1: float, beta2: float, eps: float,
            weight_decay: float, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    for t in (param, grad, exp_avg, exp_avg_sq):
        if not t.is_contiguous():
            raise ValueError("adamw_step (triton) updates contiguous tensors in place")
    n = param.numel()
    hp = _hyper(param.device, (beta1, beta2, eps, 1.0 - lr * weight_decay,
                               lr / (1.0 - beta1 ** step), math.sqrt(1.0 - beta2 ** step),
                               1.0 - beta1, 1.0 - beta2))
    _adamw_kernel[(triton.cdiv(n, BLOCK),)](param, grad, exp_avg, exp_avg_sq, hp, n,
                                            BLOCK=BLOCK, num_warps=NUM_WARPS)
    return param, exp_avg, exp_avg_sq
