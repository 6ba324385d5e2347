"""torch SwiGLU as Llama's MLP writes it: the library silu (F.silu, vectorised, float32
internally for bf16/fp16) times b. torch has no fused silu-and-mul op; torch.compile fuses
the two into one pass, eagerly they are two kernels and one temporary."""

import torch
import torch.nn.functional as F


def forward(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.silu(a) * b
