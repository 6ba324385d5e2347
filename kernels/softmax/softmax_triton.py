"""Triton fused softmax: one program per row, the row read once and written once (the Triton
tutorial's design). Rows wider than MAX_SINGLE_BLOCK use an online-softmax kernel that streams
the row in chunks (running max and rescaled sum), then a second pass writes the output.
Arithmetic is in float32 for float32 and narrower inputs and in float64 for float64 (ACC).
Each program's row offset (row * stride) is int64, since it passes 2**31 elements on big inputs
(32768 x 128256 logits); offsets within a row stay int32."""

import torch
import triton
import triton.language as tl

MAX_SINGLE_BLOCK = 16384


@triton.jit
def _softmax_row(x_ptr, out_ptr, cols, x_stride, out_stride, BLOCK: tl.constexpr,
                 ACC: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    mask = offs < cols
    x = tl.load(x_ptr + row * x_stride + offs, mask=mask, other=-float("inf")).to(ACC)
    x = x - tl.max(x, axis=0)
    e = tl.exp(x)
    y = e / tl.sum(e, axis=0)
    tl.store(out_ptr + row * out_stride + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _softmax_online(x_ptr, out_ptr, cols, x_stride, out_stride, BLOCK: tl.constexpr,
                    ACC: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_stride
    out_row = out_ptr + row * out_stride
    offs = tl.arange(0, BLOCK)
    m = tl.full((BLOCK,), -float("inf"), ACC)
    s = tl.zeros((BLOCK,), ACC)
    for start in range(0, cols, BLOCK):
        mask = start + offs < cols
        x = tl.load(x_row + start + offs, mask=mask, other=-float("inf")).to(ACC)
        m_new = tl.maximum(m, x)
        scale = tl.where(m_new == -float("inf"), 0.0, tl.exp(m - m_new))
        s = s * scale + tl.where(mask, tl.exp(x - m_new), 0.0)
        m = m_new
    m_row = tl.max(m, axis=0)
    s_row = tl.sum(s * tl.where(m == -float("inf"), 0.0, tl.exp(m - m_row)), axis=0)
    for start in range(0, cols, BLOCK):
        mask = start + offs < cols
        x = tl.load(x_row + start + offs, mask=mask, other=0.0).to(ACC)
        y = tl.exp(x - m_row) / s_row
        tl.store(out_row + start + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _softmax_backward_row(y_ptr, g_ptr, dx_ptr, cols, stride, BLOCK: tl.constexpr,
                          ACC: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    mask = offs < cols
    y = tl.load(y_ptr + row * stride + offs, mask=mask, other=0.0).to(ACC)
    g = tl.load(g_ptr + row * stride + offs, mask=mask, other=0.0).to(ACC)
    dot = tl.sum(y * g, axis=0)
    tl.store(dx_ptr + row * stride + offs, (y * (g - dot)).to(dx_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _softmax_backward_loop(y_ptr, g_ptr, dx_ptr, cols, stride, BLOCK: tl.constexpr,
                           ACC: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    y_row = y_ptr + row * stride
    g_row = g_ptr + row * stride
    dx_row = dx_ptr + row * stride
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros((BLOCK,), ACC)
    for start in range(0, cols, BLOCK):
        mask = start + offs < cols
        y = tl.load(y_row + start + offs, mask=mask, other=0.0).to(ACC)
        g = tl.load(g_row + start + offs, mask=mask, other=0.0).to(ACC)
        acc += y * g
    dot = tl.sum(acc, axis=0)
    for start in range(0, cols, BLOCK):
        mask = start + offs < cols
        y = tl.load(y_row + start + offs, mask=mask, other=0.0).to(ACC)
        g = tl.load(g_row + start + offs, mask=mask, other=0.0).to(ACC)
        tl.store(dx_row + start + offs, (y * (g - dot)).to(dx_ptr.dtype.element_ty), mask=mask)


def _acc(t):
    return tl.float64 if t.dtype == torch.float64 else tl.float32


def forward_train(x):
    y = forward(x)
    return y, y


def backward(y, g):
    """dx = y * (g - rowsum(g * y)): one pass over y and g per row (two for very wide rows)."""
    rows, cols = y.shape
    g = g.contiguous()
    dx = torch.empty_like(y)
    block = triton.next_power_of_2(cols)
    if block <= MAX_SINGLE_BLOCK:
        _softmax_backward_row[(rows,)](y, g, dx, cols, y.stride(0), BLOCK=block,
                                       ACC=_acc(y), num_warps=4 if block <= 2048 else 8)
    else:
        _softmax_backward_loop[(rows,)](y, g, dx, cols, y.stride(0), BLOCK=4096, ACC=_acc(y),
                                        num_warps=8)
    return (dx,)


def forward(x):
    rows, cols = x.shape
    out = torch.empty_like(x)
    block = triton.next_power_of_2(cols)
    if block <= MAX_SINGLE_BLOCK:
        num_warps = 4 if block <= 2048 else (8 if block <= 8192 else 16)
        _softmax_row[(rows,)](x, out, cols, x.stride(0), out.stride(0), BLOCK=block,
                              ACC=_acc(x), num_warps=num_warps)
    else:
        _softmax_online[(rows,)](x, out, cols, x.stride(0), out.stride(0), BLOCK=4096,
                                 ACC=_acc(x), num_warps=8)
    return out
