"""torch squared distances through the library op, torch.cdist(x, y) ** 2, as a user calls it
(torch has no squared-distance op). Its default compute_mode uses the uncentred GEMM form when
n > 25 or m > 25: fast, but it loses ~offset^2 eps on points far from the origin, so it fails
the spec's hard case (see spec.py). The sqrt-then-square costs about one extra rounding."""

import torch


def forward(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x, y).square()
