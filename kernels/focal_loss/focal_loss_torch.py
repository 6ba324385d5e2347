"""torch focal loss, hand-written (torch has no library op; torchvision's composition is the
`torchvision` variant). The stable form: z = (1 - 2t) x is the logit of the wrong answer,
e = exp(-|z|) is shared by the cross-entropy softplus(z) = max(z, 0) + log1p(e) and by
1 - p_t = sigmoid(z) = (1 or e) / (1 + e), so there is one exp and one log1p per element and no
log of a sigmoid. Low-precision inputs are computed in float32 and the mean rounded once."""

import torch


def forward(logits: torch.Tensor, targets: torch.Tensor, alpha: float,
            gamma: float) -> torch.Tensor:
    low = logits.dtype in (torch.bfloat16, torch.float16)
    x = logits.float() if low else logits
    positive = targets > 0.5
    z = torch.where(positive, -x, x)
    e = torch.exp(-z.abs())
    ce = torch.clamp_min(z, 0.0) + torch.log1p(e)
    p = torch.where(z >= 0, 1.0, e) / (1.0 + e)
    alpha_t = torch.where(positive, alpha, 1.0 - alpha)
    return (alpha_t * p.pow(gamma) * ce).mean().to(logits.dtype)
