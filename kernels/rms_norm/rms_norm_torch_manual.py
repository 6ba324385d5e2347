"""torch RMS norm written out (square, mean, rsqrt, scale, weight), the form of Llama's
reference code: what torch.compile fuses into one kernel; eagerly it is several passes. Low
precision inputs are computed in float32 and the result rounded once."""

import torch


def forward(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    low = x.dtype in (torch.bfloat16, torch.float16)
    xf = x.float() if low else x
    y = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps) * weight.to(xf.dtype)
    return y.to(x.dtype)
