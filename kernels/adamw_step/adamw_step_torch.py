"""torch AdamW step through the library's fused path: the functional API behind
torch.optim.AdamW(fused=True) (torch.optim.adam.adam with fused=True and decoupled weight
decay), which calls the fused in-place kernel torch._fused_adamw_ (vectorised on CPU, one
multi-tensor kernel on CUDA; float32 math for bf16/fp16 state).

The functional API increments the step counters before the update, as the optimizer does, so
the state tensor holds step - 1. Under torch.compile this path is a graph break by design
(torch marks it `torch.compiler.disable`: "don't trace into fused optimizer"), so the
torch_compile column runs the same fused kernel eagerly and records the break; calling
torch._fused_adamw_ directly inside torch.compile fails in functionalization (torch 2.13)."""

import torch
from torch.optim.adam import adam


def forward(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor,
            exp_avg_sq: torch.Tensor, *, lr: float, beta1: float, beta2: float, eps: float,
            weight_decay: float, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # torch.full launches a fill on the device; torch.tensor(x, device=cuda) would make a
    # synchronous host-to-device copy every step
    state_steps = [torch.full((), float(step - 1), dtype=torch.float32, device=param.device)]
    adam([param], [grad], [exp_avg], [exp_avg_sq], [], state_steps, fused=True,
         decoupled_weight_decay=True, amsgrad=False, beta1=beta1, beta2=beta2, lr=lr,
         weight_decay=weight_decay, eps=eps, maximize=False)
    return param, exp_avg, exp_avg_sq
