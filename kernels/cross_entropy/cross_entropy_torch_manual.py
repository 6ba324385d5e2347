"""torch cross-entropy written out: max, centre, exp-sum, log, gather (optax's formulation),
which torch.compile fuses into a single pass over the logits; eagerly it is several. Low
precision logits are computed in float32 and the loss rounded once. The max is detached from
autograd, as optax stops its gradient: the loss does not depend on the shift, and amax's
gradient would add a mask, a count and a scatter over the logits to the backward."""

import torch


def forward(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    low = logits.dtype in (torch.bfloat16, torch.float16)
    z = logits.float() if low else logits
    shifted = z - z.amax(dim=-1, keepdim=True).detach()
    loss = torch.log(torch.exp(shifted).sum(dim=-1))
    loss = loss - (1.0 - label_smoothing) * shifted.gather(-1, target[:, None]).squeeze(-1)
    if label_smoothing:
        loss = loss - label_smoothing * shifted.mean(dim=-1)
    return loss.mean().to(logits.dtype)
