"""torch GELU: the library op F.gelu with its `approximate` ("none": erf form, "tanh"); it
computes in float32 internally for bf16/fp16 inputs."""

import torch
import torch.nn.functional as F


def forward(x: torch.Tensor, *, approximate: str = "none") -> torch.Tensor:
    return F.gelu(x, approximate=approximate)
