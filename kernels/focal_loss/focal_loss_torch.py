"""torch focal loss, hand-written (torch has no library op; torchvision's composition is the
`torchvision` variant). The stable form: z = (1 - 2t) x is the logit of the wrong answer,
e = exp(-|z|) is shared by the cross-entropy softplus(z) = max(z, 0) + log1p(e) and by
1 - p_t = sigmoid(z) = (1 or e) / (1 + e), so there is one exp and one log1p per element and no
log of a sigmoid. Low-precision inputs are computed in float32 and the mean rounded once.

The targets are exactly 0 or 1, so the sign 1 - 2t and alpha_t are arithmetic on them, not
selects on a `targets > 0.5` mask: under torch.compile the mask is what AOTAutograd saves for
the backward, and Inductor's kernel that stores it as bool took 18 ms where the same kernel
without the store takes 3.6 (65536 x 80 float32, 2-core VM, runner's allocator settings;
compiled forward + backward step 29.8 -> 8.5 ms, eager 66.5 -> 55.1; results bitwise equal)."""

import torch


def forward(logits: torch.Tensor, targets: torch.Tensor, alpha: float,
            gamma: float) -> torch.Tensor:
    low = logits.dtype in (torch.bfloat16, torch.float16)
    x = logits.float() if low else logits
    sign = 1.0 - 2.0 * targets.to(x.dtype)  # -1 where the target is 1
    z = sign * x
    e = torch.exp(-z.abs())
    ce = torch.clamp_min(z, 0.0) + torch.log1p(e)
    p = torch.where(z >= 0, 1.0, e) / (1.0 + e)
    alpha_t = 0.5 + (0.5 - alpha) * sign  # alpha where the target is 1, else 1 - alpha
    return (alpha_t * p.pow(gamma) * ce).mean().to(logits.dtype)
