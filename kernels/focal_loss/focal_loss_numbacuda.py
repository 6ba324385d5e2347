"""numba-cuda focal loss: the loss is one mean over every element, so the kernel ignores the row
structure (rows are short: 80 classes in a detection head, too few for a block, or even a warp,
per row) and walks the flattened [rows x classes] elements. Each 256-thread block owns a chunk of
256 x 8 elements: every thread issues its 8 coalesced loads of logits and of targets before any
arithmetic, adds its terms, and one block reduction writes the chunk's partial sum in the input's
precision; a second, one-block kernel adds the partials in a fixed order (deterministic, unlike an
atomic add) and divides by the count (Triton's design). Per element the stable form: z = (1 - 2t)
x, l = log1p(exp(-|z|)), cross-entropy softplus(z) = max(z, 0) + l and (1 - p_t)^gamma =
exp(-gamma softplus(-z)), softplus(-z) = max(-z, 0) + l: no log of a sigmoid, any gamma >= 0, one
exp more than the gamma = 2 square (the kernel is memory-bound). fastmath: approximate exp
(ex2.approx, as Triton's tl.exp) and flush-to-zero (terms below 1e-38 vanish: nothing next to the
mean); log1p is libdevice's accurate one.

Training saves only the inputs. Backward is one elementwise kernel over the flattened elements,
the forward's chunks (each thread's 8 logits and targets loaded first): the same e = exp(-|z|)
and log1p, s = sigmoid(z) and p_t as r or e r with r = 1 / (1 + e) (no 1 - s cancellation), then
d logits = (1 - 2t) alpha_t s^gamma (gamma p_t ce + s) g / count, a sum of positive terms with no
negative power of s; g is read on the device (no host synchronisation).
"""

import functools
import math

import torch
from numba import cuda

from kernbench.cuda_launch import block_sum, launch, numba_type, row_threads

THREADS = 256
PER_THREAD = 8
CHUNK = THREADS * PER_THREAD  # elements per block of the first kernel
SUM_THREADS = 512


@functools.cache
def _partial_kernel(T):
    @cuda.jit(fastmath=True)
    def focal_partial(x, t, partials, alpha, gamma):
        shared = cuda.shared.array(THREADS, T)
        xs = cuda.local.array(PER_THREAD, T)
        ts = cuda.local.array(PER_THREAD, T)
        tid = cuda.threadIdx.x
        start = cuda.blockIdx.x * CHUNK + tid  # 64-bit: CHUNK is an int64 literal
        count = x.shape[0]
        for k in range(PER_THREAD):
            j = start + k * THREADS
            xs[k] = x[j] if j < count else T(0)
            ts[k] = t[j] if j < count else T(0)
        acc = T(0)
        for k in range(PER_THREAD):
            if start + k * THREADS < count:
                positive = ts[k] > T(0.5)
                z = -xs[k] if positive else xs[k]  # the logit of the wrong answer
                log1p_e = math.log1p(math.exp(-abs(z)))
                ce = max(z, T(0)) + log1p_e  # softplus(z) = -log(p_t)
                modulating = math.exp(-gamma * (max(-z, T(0)) + log1p_e))  # (1 - p_t)^gamma
                alpha_t = alpha if positive else T(1) - alpha
                acc += alpha_t * modulating * ce
        total = block_sum(acc, shared)
        if tid == 0:
            partials[cuda.blockIdx.x] = total

    return focal_partial


@functools.cache
def _mean_kernel(T):
    @cuda.jit(fastmath=True)
    def finish_mean(partials, count, out):
        shared = cuda.shared.array(SUM_THREADS, T)
        tid, step = cuda.threadIdx.x, cuda.blockDim.x
        acc = T(0)
        for j in range(tid, partials.shape[0], step):
            acc += partials[j]
        total = block_sum(acc, shared)
        if tid == 0:
            out[0] = total / T(count)

    return finish_mean


def forward(logits, targets, alpha, gamma):
    x, t = logits.contiguous().view(-1), targets.contiguous().view(-1)
    T = numba_type(x.dtype)
    count = x.numel()
    n_parts = -(-count // CHUNK)
    partials = torch.empty(n_parts, device=x.device, dtype=x.dtype)
    out = torch.empty((), device=x.device, dtype=x.dtype)
    launch(_partial_kernel(T), n_parts, THREADS, x, t, partials, T(alpha), T(gamma))
    launch(_mean_kernel(T), 1, row_threads(n_parts, SUM_THREADS), partials, count, out.view(1))
    return out


# -- training --------------------------------------------------------------------------------
@functools.cache
def _backward_kernel(T):
    @cuda.jit(fastmath=True)
    def focal_backward(x, t, g, d, alpha, gamma):
        xs = cuda.local.array(PER_THREAD, T)
        ts = cuda.local.array(PER_THREAD, T)
        start = cuda.blockIdx.x * CHUNK + cuda.threadIdx.x
        count = x.shape[0]
        for k in range(PER_THREAD):
            j = start + k * THREADS
            if j < count:
                xs[k] = x[j]
                ts[k] = t[j]
        scale = g[0] / T(count)
        for k in range(PER_THREAD):
            j = start + k * THREADS
            if j < count:
                positive = ts[k] > T(0.5)
                z = -xs[k] if positive else xs[k]  # the logit of the wrong answer
                e = math.exp(-abs(z))  # in (0, 1]: never overflows
                log1p_e = math.log1p(e)
                ce = max(z, T(0)) + log1p_e  # softplus(z) = -log(p_t)
                r = T(1) / (T(1) + e)
                er = e * r
                s = r if z >= T(0) else er  # sigmoid(z) = 1 - p_t
                p_t = er if z >= T(0) else r
                modulating = math.exp(-gamma * (max(-z, T(0)) + log1p_e))  # s^gamma
                grad = modulating * (gamma * p_t * ce + s) * scale
                d[j] = -alpha * grad if positive else (T(1) - alpha) * grad

    return focal_backward


def forward_train(logits, targets, alpha, gamma):
    """Backward needs nothing beyond the inputs."""
    logits, targets = logits.contiguous(), targets.contiguous()
    return forward(logits, targets, alpha, gamma), (logits, targets)


def backward(saved, g, alpha, gamma):
    logits, targets = saved
    x, t = logits.contiguous(), targets.contiguous()
    T = numba_type(x.dtype)
    d = torch.empty_like(x)
    count = x.numel()
    if count:
        launch(_backward_kernel(T), -(-count // CHUNK), THREADS, x.view(-1), t.view(-1),
               g.reshape(1).to(x.dtype), d.view(-1), T(alpha), T(gamma))
    return (d,)
