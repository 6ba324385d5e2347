"""torch AdamW step written out with in-place ops, as torch's single-tensor AdamW does
(mul_, lerp_, addcmul_, addcdiv_ with step_size = lr / bc1 and denominator
sqrt(v) / sqrt(bc2) + eps). bf16/fp16 state is updated in float32 and copied back (rounded once).
Eagerly that is several passes over memory; torch.compile fuses it into one kernel with the
input mutations kept (this is what compiled optimizers generate)."""

import math

import torch


def forward(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor,
            exp_avg_sq: torch.Tensor, *, lr: float, beta1: float, beta2: float, eps: float,
            weight_decay: float, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    low = param.dtype in (torch.bfloat16, torch.float16)
    p, g, m, v = ((t.float() for t in (param, grad, exp_avg, exp_avg_sq)) if low
                  else (param, grad, exp_avg, exp_avg_sq))
    step_size = lr / (1.0 - beta1 ** step)
    bc2_sqrt = math.sqrt(1.0 - beta2 ** step)
    p.mul_(1.0 - lr * weight_decay)
    m.lerp_(g, 1.0 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
    denom = (v.sqrt() / bc2_sqrt).add_(eps)
    p.addcdiv_(m, denom, value=-step_size)
    if low:
        param.copy_(p)
        exp_avg.copy_(m)
        exp_avg_sq.copy_(v)
    return param, exp_avg, exp_avg_sq
