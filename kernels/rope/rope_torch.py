"""torch RoPE, hand-written (torch has no rotary op), half-rotation layout; bf16/fp16 computed
in float32 and rounded once.

Two spellings of the same arithmetic, because eager and compiled torch want different code:
- eager: write each output half in place through out= / addcmul_ (four kernels over q, no
  temporaries). The HF-style composition `cat((q1*cos - q2*sin, q2*cos + q1*sin))` costs ~8x
  more eagerly on this CPU: six broadcasting passes over strided halves plus the temporaries.
- under torch.compile: that composition, which inductor fuses into one loop. Inductor handles
  the out=-into-views version poorly (~5x slower than the composition compiled).
`torch.compiler.is_compiling()` picks the branch at trace time (torch's own optimizers switch
paths the same way), so each column shows the best code for its mode.

Training: autograd cannot differentiate out= ops, so when q requires grad the eager spelling
runs inside a torch.autograd.Function (`_Rope`) that saves only the tables and whose backward is
the same four in-place kernels rotating the cotangent by -angle (the transpose of a rotation).
The compiled branch is plain differentiable ops: AOTAutograd derives its backward. When no
gradient is wanted, forward takes exactly the eager path it always did."""

import torch


def _rotate(q: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
            sign: float) -> torch.Tensor:
    """Eager, in place through out=: the rotation by +angle (sign 1) or -angle (sign -1)."""
    low = q.dtype in (torch.bfloat16, torch.float16)
    qf, c, s = (q.float(), cos.float(), sin.float()) if low else (q, cos, sin)
    q1, q2 = qf.chunk(2, dim=-1)
    out = torch.empty_like(qf)
    o1, o2 = out.chunk(2, dim=-1)
    torch.mul(q1, c, out=o1)
    o1.addcmul_(q2, s, value=-sign)
    torch.mul(q2, c, out=o2)
    o2.addcmul_(q1, s, value=sign)
    return out.to(q.dtype) if low else out


def _composed(q: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The HF-style composition: fused by inductor, differentiable by plain autograd."""
    low = q.dtype in (torch.bfloat16, torch.float16)
    qf, c, s = (q.float(), cos.float(), sin.float()) if low else (q, cos, sin)
    q1, q2 = qf.chunk(2, dim=-1)
    return torch.cat((q1 * c - q2 * s, q2 * c + q1 * s), dim=-1).to(q.dtype)


class _Rope(torch.autograd.Function):
    """The eager rotation with a hand-written backward: saves cos and sin, nothing of q."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(cos, sin)
        return _rotate(q, cos, sin, 1.0)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        cos, sin = ctx.saved_tensors
        return _rotate(g.contiguous(), cos, sin, -1.0), None, None


def forward(q: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    if torch.compiler.is_compiling():
        return _composed(q, cos, sin)
    if torch.is_grad_enabled() and (q.requires_grad or cos.requires_grad or sin.requires_grad):
        if cos.requires_grad or sin.requires_grad:  # differentiating the tables: plain autograd
            return _composed(q, cos, sin)
        return _Rope.apply(q, cos, sin)
    return _rotate(q, cos, sin, 1.0)
