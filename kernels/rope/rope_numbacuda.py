"""numba-cuda RoPE (half-rotation layout: dimension i pairs with i + D/2). A thread owns one
(position s, frequency i) pair of the [seq, D/2] tables: it loads cos and sin once, into
registers, and rotates that pair in HEADS consecutive (batch, head) slices of q, so the tables
are read once per HEADS slices (Triton's kernel re-reads them, from L2, for every slice).
Consecutive threads take consecutive pairs: for each slice a warp reads (and writes) two
contiguous runs of q, one in each half of a row, and one run of each table: coalesced. Each
thread first loads both halves of all its slices (2 * HEADS loads in flight), then computes
and stores: numba cannot mark q and out noalias, so without that order every load would wait
behind the previous store. Grid: (pair blocks, slice groups), the slice groups walked by a
grid-stride loop past grid y's 65535.

Arithmetic in the input's precision (float32 or float64): two products and a sum per output,
no transcendental, so no fastmath (NVVM contracts x1 c - x2 s into an fma either way).

Training saves the tables only (no activation). Backward is the same kernel built with INVERSE:
it rotates the cotangent g by -angle (the transposed rotation; sin negated as it is loaded, a
compile-time branch), reading g and the tables once and writing d_q once, like the forward."""

import torch
from numba import cuda

from kernbench.cuda_launch import launch, per_dtype

THREADS = 256
HEADS = 4  # (batch, head) slices a thread rotates with one load of its cos/sin pair
MAX_GRID_Y = 65535


def _build(T, inverse):
    @cuda.jit
    def rope(q, cos, sin, out):
        # q, out: [batch * heads, seq, D]; cos, sin: [seq, D / 2]
        slices, seq, d = q.shape
        half = d // 2
        p = cuda.blockIdx.x * THREADS + cuda.threadIdx.x
        if p >= seq * half:
            return
        s = p // half
        i = p - s * half
        c = cos[s, i]
        sn = -sin[s, i] if inverse else sin[s, i]  # the rotation by -angle: its transpose
        x1 = cuda.local.array(HEADS, T)
        x2 = cuda.local.array(HEADS, T)
        for first in range(cuda.blockIdx.y * HEADS, slices, cuda.gridDim.y * HEADS):
            for k in range(HEADS):
                bh = first + k
                if bh < slices:
                    x1[k] = q[bh, s, i]
                    x2[k] = q[bh, s, i + half]
            for k in range(HEADS):
                bh = first + k
                if bh < slices:
                    out[bh, s, i] = x1[k] * c - x2[k] * sn
                    out[bh, s, i + half] = x2[k] * c + x1[k] * sn

    return rope


@per_dtype
def _kernels(T):
    """{False: the forward rotation, True: the inverse (backward) rotation}."""
    return {inverse: _build(T, inverse) for inverse in (False, True)}


def _rotate(q, cos, sin, inverse):
    q, cos, sin = q.contiguous(), cos.contiguous(), sin.contiguous()
    b, h, seq, d = q.shape
    out = torch.empty_like(q)
    pairs, slices = seq * (d // 2), b * h
    if pairs and slices:
        grid = (-(-pairs // THREADS), min(-(-slices // HEADS), MAX_GRID_Y))
        launch(_kernels(q.dtype)[inverse], grid, THREADS, q.view(slices, seq, d), cos, sin,
               out.view(slices, seq, d))
    return out


def forward(q, cos, sin):
    return _rotate(q, cos, sin, False)


def forward_train(q, cos, sin):
    return _rotate(q, cos, sin, False), (cos.contiguous(), sin.contiguous())


def backward(saved, g):
    """d_q: the cotangent rotated by -angle (reads g and the tables, writes d_q)."""
    cos, sin = saved
    return (_rotate(g, cos, sin, True),)
