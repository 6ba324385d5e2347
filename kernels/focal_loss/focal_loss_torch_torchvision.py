"""torch focal loss as torchvision.ops.sigmoid_focal_loss writes it (torchvision is not a
dependency here, so its composition is reproduced): BCE-with-logits, a separate sigmoid, p_t and
alpha_t by arithmetic on the targets. It is stable (BCE-with-logits never takes log(sigmoid)),
but 1 - p_t cancels for confident predictions and each step is its own pass eagerly; the
hand-written default shares one exp. Low-precision inputs are computed in float32 (torchvision
itself would stay in bf16) and the mean rounded once."""

import torch
import torch.nn.functional as F


def forward(logits: torch.Tensor, targets: torch.Tensor, alpha: float,
            gamma: float) -> torch.Tensor:
    low = logits.dtype in (torch.bfloat16, torch.float16)
    inputs = logits.float() if low else logits
    targets = targets.to(inputs.dtype)
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * loss).mean().to(logits.dtype)
