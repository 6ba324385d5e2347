"""Triton RoPE (half-rotation layout). Grid: (seq blocks, batch * heads). A program loads a
[BLOCK_S, D/2] tile of each half of q and the matching cos/sin tiles, computes in float32 and
stores both halves: q is read once and written once, the tables are re-read per (b, h) but
stay in L2 (seq * D * itemsize is a few MB at most). BLOCK_H = next_power_of_2(D/2) with a mask
covers head dims like 80 or 96; BLOCK_S puts ~2048 elements per half-tile (16 per thread with
4 warps), a memory-bound tile size that keeps enough loads in flight on an H100.

Training saves the tables only. Backward is the same kernel with INVERSE set: it rotates the
cotangent by -angle (sin negated as it is loaded; a compile-time branch, so the forward's code is
unchanged)."""

import torch
import triton
import triton.language as tl

TILE = 2048


@triton.jit
def _rope_kernel(q_ptr, cos_ptr, sin_ptr, out_ptr, seq, half, q_row, t_row,
                 BLOCK_S: tl.constexpr, BLOCK_H: tl.constexpr, INVERSE: tl.constexpr):
    pid_s = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    rs = pid_s * BLOCK_S + tl.arange(0, BLOCK_S)
    ri = tl.arange(0, BLOCK_H)
    mask = (rs[:, None] < seq) & (ri[None, :] < half)
    ct = tl.float64 if out_ptr.dtype.element_ty == tl.float64 else tl.float32
    t_offs = rs[:, None] * t_row + ri[None, :]
    c = tl.load(cos_ptr + t_offs, mask=mask, other=0.0).to(ct)
    s = tl.load(sin_ptr + t_offs, mask=mask, other=0.0).to(ct)
    if INVERSE:  # the transpose of a rotation: the rotation by -angle
        s = -s
    base = bh * seq * q_row
    q_offs = base + rs[:, None] * q_row + ri[None, :]
    x1 = tl.load(q_ptr + q_offs, mask=mask, other=0.0).to(ct)
    x2 = tl.load(q_ptr + q_offs + half, mask=mask, other=0.0).to(ct)
    ty = out_ptr.dtype.element_ty
    tl.store(out_ptr + q_offs, (x1 * c - x2 * s).to(ty), mask=mask)
    tl.store(out_ptr + q_offs + half, (x2 * c + x1 * s).to(ty), mask=mask)


def _rotate(q: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
            inverse: bool) -> torch.Tensor:
    q, cos, sin = q.contiguous(), cos.contiguous(), sin.contiguous()
    b, h, s, d = q.shape
    half = d // 2
    out = torch.empty_like(q)
    block_h = triton.next_power_of_2(half)
    block_s = max(1, min(triton.next_power_of_2(s), TILE // block_h))
    grid = (triton.cdiv(s, block_s), b * h)
    _rope_kernel[grid](q, cos, sin, out, s, half, d, cos.stride(0), BLOCK_S=block_s,
                       BLOCK_H=block_h, INVERSE=inverse, num_warps=4)
    return out


def forward(q: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return _rotate(q, cos, sin, False)


def forward_train(q: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor,
                                                                                   tuple]:
    return _rotate(q, cos, sin, False), (cos.contiguous(), sin.contiguous())


def backward(saved: tuple, g: torch.Tensor) -> tuple[torch.Tensor]:
    """d_q: the cotangent rotated by -angle (reads g and the tables, writes d_q)."""
    cos, sin = saved
    return (_rotate(g, cos, sin, True),)
