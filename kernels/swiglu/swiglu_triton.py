"""Triton SwiGLU: one flat elementwise kernel over the contiguous tensors (Liger's swiglu does
the same row by row). Each program handles BLOCK elements: load a and b, compute in float32
(float64 for float64 inputs), round once on store. BLOCK=1024 with 4 warps is 8 elements per
thread, two 128-bit loads per input in fp32: the usual choice for a memory-bound pointwise
kernel on an H100 (inductor picks the same). Offsets are int64 so tensors over 2**31 elements
index correctly.

Training saves a and b only (no silu(a)); the backward kernel recomputes sigmoid(a) and writes
d_a and d_b in one fused elementwise pass, as Liger's swiglu backward does."""

import torch
import triton
import triton.language as tl

BLOCK = 1024
NUM_WARPS = 4


@triton.jit
def _swiglu_kernel(a_ptr, b_ptr, out_ptr, n, BLOCK: tl.constexpr):
    start = tl.program_id(0).to(tl.int64) * BLOCK
    offs = start + tl.arange(0, BLOCK)
    mask = offs < n
    ct = tl.float64 if out_ptr.dtype.element_ty == tl.float64 else tl.float32
    a = tl.load(a_ptr + offs, mask=mask, other=0.0).to(ct)
    b = tl.load(b_ptr + offs, mask=mask, other=0.0).to(ct)
    y = a * tl.sigmoid(a) * b
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


def forward(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.contiguous(), b.contiguous()
    out = torch.empty_like(a)
    n = a.numel()
    _swiglu_kernel[(triton.cdiv(n, BLOCK),)](a, b, out, n, BLOCK=BLOCK, num_warps=NUM_WARPS)
    return out


@triton.jit
def _swiglu_backward_kernel(a_ptr, b_ptr, g_ptr, da_ptr, db_ptr, n, BLOCK: tl.constexpr):
    start = tl.program_id(0).to(tl.int64) * BLOCK
    offs = start + tl.arange(0, BLOCK)
    mask = offs < n
    ct = tl.float64 if da_ptr.dtype.element_ty == tl.float64 else tl.float32
    a = tl.load(a_ptr + offs, mask=mask, other=0.0).to(ct)
    b = tl.load(b_ptr + offs, mask=mask, other=0.0).to(ct)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(ct)
    # e = exp(-|a|) never overflows; s = sigmoid(a) and 1 - s are r and e r (or the other way
    # round), so 1 - s is not a difference and does not cancel for large a
    e = tl.exp(-tl.abs(a))
    r = 1.0 / (1.0 + e)
    er = e * r
    pos = a >= 0
    s = tl.where(pos, r, er)
    s_neg = tl.where(pos, er, r)
    gs = g * s
    tl.store(da_ptr + offs, (gs * b * (1.0 + a * s_neg)).to(da_ptr.dtype.element_ty), mask=mask)
    tl.store(db_ptr + offs, (gs * a).to(db_ptr.dtype.element_ty), mask=mask)


def forward_train(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, tuple]:
    a, b = a.contiguous(), b.contiguous()
    return forward(a, b), (a, b)


def backward(saved: tuple, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One fused pass: read a, b and g once, write d_a and d_b (5 elements of traffic each)."""
    a, b = saved
    g = g.contiguous()
    da, db = torch.empty_like(a), torch.empty_like(a)
    n = a.numel()
    _swiglu_backward_kernel[(triton.cdiv(n, BLOCK),)](a, b, g, da, db, n, BLOCK=BLOCK,
                                                      num_warps=NUM_WARPS)
    return da, db
