"""The offset type of a Triton kernel that indexes whole operands: int32 while every element of
every operand lies less than 2**31 elements from the operand's start, else int64.

`row * stride` wraps in int32 past that (an LM head's 32768 x 128256 logits, pairwise distances
once n x m reaches 2**31). Inductor picks its index dtype the same way. Shapes that fit keep the
int32 offsets, which take half the registers; an int64 base per program with int32 offsets
within the tile was tried for the matmul instead: on sm_90 it moved the registers and spills of
many configs (some up), and its in-tile offsets still wrap, e.g. b.t()'s 256 columns x a stride
of 2**23 in the backward. Used by the matmul and pairwise-distance Triton kernels (a
`tl.constexpr`, so each type compiles its own kernel)."""

from __future__ import annotations


def offset_dtype(*tensors):
    """tl.int32 or tl.int64 for the largest element offset of `tensors` (torch tensors)."""
    import triton.language as tl

    span = max(sum((n - 1) * s for n, s in zip(t.shape, t.stride())) for t in tensors)
    return tl.int32 if span < 2**31 else tl.int64
