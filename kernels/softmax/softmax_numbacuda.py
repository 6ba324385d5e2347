"""numba-cuda softmax: one thread block per row. Each thread streams its strided share of the row
once keeping an online (running max, rescaled sum) pair, one exp per element; two block
reductions combine the pairs; a second pass (an L2/L1 hit for rows up to a few MB) writes
exp(x - max) / sum. Arithmetic in the input's precision (float32 or float64), with fastmath
(ex2.approx exp and approximate division, as Triton's tl.exp uses).

Training saves y alone (the output: no extra memory). Backward, dx = y (g - rowsum(g y)), is one
block per row reading y and g once: each thread keeps its strided share of both in registers
(coalesced loads, all issued before the arithmetic), one block reduction gives the row's dot,
and dx is written from the registers (columns past the 512 x 16 register cache are re-read, from
L2). No exp or division there: fastmath only lets the compiler fuse multiply-adds."""

import functools
import math

import torch
from numba import cuda

from kernbench.cuda_launch import (
    block_max,
    block_sum,
    launch,
    numba_type,
    per_dtype,
    row_cache_plan,
    row_threads,
)

MAX_THREADS = 256
BWD_MAX_THREADS = 512
BWD_PER_THREAD = 8  # backward register cache: ~8 (y, g) pairs a thread
BWD_MAX_PER_THREAD = 16  # beyond 512 x 16 columns the rest of the row is streamed


@per_dtype
def _kernel(T):
    @cuda.jit(fastmath=True)
    def softmax_rows(x, out):
        shared = cuda.shared.array(MAX_THREADS, T)
        row, tid, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        cols = x.shape[1]
        m = T(-math.inf)
        s = T(0)
        for j in range(tid, cols, step):
            v = x[row, j]
            if v > m:
                s = s * math.exp(m - v) + T(1)
                m = v
            else:
                s += math.exp(v - m)
        row_max = block_max(m, shared)
        scaled = s * math.exp(m - row_max) if s > T(0) else T(0)
        inv = T(1) / block_sum(scaled, shared)
        for j in range(tid, cols, step):
            out[row, j] = math.exp(x[row, j] - row_max) * inv

    return softmax_rows


@functools.cache
def _backward_kernel(T, per):
    @cuda.jit(fastmath=True)
    def softmax_backward_rows(y, g, dx):
        shared = cuda.shared.array(BWD_MAX_THREADS, T)
        yc = cuda.local.array(per, T)
        gc = cuda.local.array(per, T)
        row, tid, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
        cols = y.shape[1]
        tail = tid + per * step  # first column past the register cache
        for k in range(per):
            j = tid + k * step
            yc[k] = y[row, j] if j < cols else T(0)
            gc[k] = g[row, j] if j < cols else T(0)
        s = T(0)
        for k in range(per):
            s += yc[k] * gc[k]
        for j in range(tail, cols, step):
            s += y[row, j] * g[row, j]
        dot = block_sum(s, shared)
        for k in range(per):
            j = tid + k * step
            if j < cols:
                dx[row, j] = yc[k] * (gc[k] - dot)
        for j in range(tail, cols, step):
            yv = y[row, j]
            dx[row, j] = yv * (g[row, j] - dot)

    return softmax_backward_rows


def forward(x):
    x = x.contiguous()
    out = torch.empty_like(x)
    launch(_kernel(x.dtype), x.shape[0], row_threads(x.shape[1], MAX_THREADS), x, out)
    return out


def forward_train(x):
    y = forward(x)
    return y, y


def backward(y, g):
    """dx = y (g - rowsum(g y)): one block per row, y and g read once."""
    g = g.contiguous()
    dx = torch.empty_like(y)
    threads, per = row_cache_plan(y.shape[1], BWD_PER_THREAD, BWD_MAX_THREADS,
                                  BWD_MAX_PER_THREAD)
    launch(_backward_kernel(numba_type(y.dtype), per), y.shape[0], threads, y, g, dx)
    return dx
