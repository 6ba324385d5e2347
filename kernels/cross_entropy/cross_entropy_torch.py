"""torch cross-entropy: the library op F.cross_entropy (log_softmax + nll_loss, label smoothing
built in; bf16 logits give a bf16 loss)."""

import torch
import torch.nn.functional as F


def forward(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
