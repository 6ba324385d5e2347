"""Triton fused RMS norm: x read once, out written once.

Rows up to MAX_FUSED_COLS wide are held in registers: each program normalises a [BLOCK_M,
BLOCK_N] tile (BLOCK_N = next_power_of_2(hidden); BLOCK_M > 1 only for short rows, so a program
still moves a few thousand elements). Wider rows stream in BLOCK_N chunks, one program per row:
one pass for the sum of squares, one to write (the re-read hits L2). The mean square is
accumulated in float32 (float64 for float64 inputs), the output rounded once on store.
"""

import torch
import triton
import triton.language as tl

MAX_FUSED_COLS = 16384  # 64 KiB of float32 per row: beyond this the registers spill
CHUNK_COLS = 4096
TILE_ELEMS = 2048  # short rows are batched until a program holds about this many elements


@triton.jit
def _rms_norm_tile(x_ptr, w_ptr, out_ptr, rows, cols, x_stride, out_stride, eps,
                   ACC: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    r = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    c = tl.arange(0, BLOCK_N)
    cmask = c < cols
    mask = (r < rows)[:, None] & cmask[None, :]
    x = tl.load(x_ptr + r[:, None].to(tl.int64) * x_stride + c[None, :], mask=mask,
                other=0.0).to(ACC)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / cols + eps)
    w = tl.load(w_ptr + c, mask=cmask, other=0.0).to(ACC)
    y = x * rstd[:, None] * w[None, :]
    tl.store(out_ptr + r[:, None].to(tl.int64) * out_stride + c[None, :],
             y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _rms_norm_chunked(x_ptr, w_ptr, out_ptr, cols, x_stride, out_stride, eps,
                      ACC: tl.constexpr, BLOCK_N: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * x_stride
    out_row = out_ptr + row * out_stride
    offs = tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_N,), ACC)
    for start in range(0, cols, BLOCK_N):
        x = tl.load(x_row + start + offs, mask=start + offs < cols, other=0.0).to(ACC)
        acc += x * x
    rstd = 1.0 / tl.sqrt(tl.sum(acc, axis=0) / cols + eps)
    for start in range(0, cols, BLOCK_N):
        mask = start + offs < cols
        x = tl.load(x_row + start + offs, mask=mask, other=0.0).to(ACC)
        w = tl.load(w_ptr + start + offs, mask=mask, other=0.0).to(ACC)
        tl.store(out_row + start + offs, (x * rstd * w).to(out_ptr.dtype.element_ty), mask=mask)


def acc_type(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def warps_for(elems: int) -> int:
    """About 8-16 elements per thread (32 threads a warp), between 1 and 16 warps."""
    return max(1, min(16, triton.next_power_of_2(elems) // 512))


def forward(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    rows, cols = x.shape
    x = x.contiguous() if x.stride(-1) != 1 else x
    out = torch.empty_like(x)
    acc = acc_type(x.dtype)
    block_n = triton.next_power_of_2(cols)
    if block_n <= MAX_FUSED_COLS:
        block_m = min(triton.next_power_of_2(rows), max(1, TILE_ELEMS // block_n))
        _rms_norm_tile[(triton.cdiv(rows, block_m),)](
            x, weight, out, rows, cols, x.stride(0), out.stride(0), eps, ACC=acc,
            BLOCK_M=block_m, BLOCK_N=block_n, num_warps=warps_for(block_m * block_n))
    else:
        _rms_norm_chunked[(rows,)](x, weight, out, cols, x.stride(0), out.stride(0), eps,
                                   ACC=acc, BLOCK_N=CHUNK_COLS, num_warps=8)
    return out
