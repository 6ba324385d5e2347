"""torch GELU written out from the formula (what torch.compile fuses into one kernel; eagerly
it is several passes): bf16/fp16 inputs computed in float32 and rounded once."""

import math

import torch

INV_SQRT2 = 1.0 / math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def forward(x: torch.Tensor, *, approximate: str = "none") -> torch.Tensor:
    xf = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
    if approximate == "tanh":
        inner = SQRT_2_OVER_PI * (xf + 0.044715 * xf * xf * xf)
        y = 0.5 * xf * (1.0 + torch.tanh(inner))
    else:
        y = 0.5 * xf * (1.0 + torch.erf(xf * INV_SQRT2))
    return y.to(x.dtype)
