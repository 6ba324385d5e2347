"""torch RoPE, hand-written (torch has no rotary op), half-rotation layout; bf16/fp16 computed
in float32 and rounded once.

Two spellings of the same arithmetic, because eager and compiled torch want different code:
- eager: write each output half in place through out= / addcmul_ (four kernels over q, no
  temporaries). The HF-style composition `cat((q1*cos - q2*sin, q2*cos + q1*sin))` costs ~8x
  more eagerly on this CPU: six broadcasting passes over strided halves plus the temporaries.
- under torch.compile: that composition, which inductor fuses into one loop. Inductor handles
  the out=-into-views version poorly (~5x slower than the composition compiled).
`torch.compiler.is_compiling()` picks the branch at trace time (torch's own optimizers switch
paths the same way), so each column shows the best code for its mode."""

import torch


def forward(q: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    low = q.dtype in (torch.bfloat16, torch.float16)
    qf, c, s = (q.float(), cos.float(), sin.float()) if low else (q, cos, sin)
    q1, q2 = qf.chunk(2, dim=-1)
    if torch.compiler.is_compiling():
        return torch.cat((q1 * c - q2 * s, q2 * c + q1 * s), dim=-1).to(q.dtype)
    out = torch.empty_like(qf)
    o1, o2 = out.chunk(2, dim=-1)
    torch.mul(q1, c, out=o1)
    o1.addcmul_(q2, s, value=-1.0)
    torch.mul(q2, c, out=o2)
    o2.addcmul_(q1, s)
    return out.to(q.dtype) if low else out
