"""numba-cuda GELU: one flat elementwise kernel over the contiguous tensor, the form chosen on
the host (two kernels, each branch-free). A block of 256 threads takes tiles of 1024 elements
(Triton's BLOCK): each thread first loads its 4 elements, one warp-wide coalesced load per
element a warp covers, into registers, then computes and stores them. numba cannot mark the
arrays noalias, so without the explicit loads-first order every load would wait behind the
previous store: this keeps 4 loads in flight per thread, as Triton's vectorised loads do. The
tiles are walked by a grid-stride loop (one tile per block at any realistic size).

Arithmetic in the input's precision (float32 or float64), constants cast to it. The exact form
is 0.5 x erfc(-x / sqrt 2) with libdevice erfcf / erfc, as the spec's reference: Triton's and
torch's 1 + erf(x / sqrt 2) cancels to 0 for x < -5.5 in float32, erfc keeps the negative
tail's relative accuracy for a few more instructions in a memory-bound kernel. The tanh form is
x / (1 + exp(-2u)) = 0.5 x (1 + tanh u), exact algebra, one exp, no cancellation. fastmath
(ftz, ex2.approx exp and approximate division in float32, as Triton's tl.exp and `/`): it
leaves libdevice's erfc alone and needs no tanh (tanh.approx.f32, 2^-11 relative error, would
fail the 8-eps tolerance).

Training saves x only; the backward kernel (same tiling, x and g loaded first) recomputes
gelu'(x) and multiplies by g in one pass. Exact form: 0.5 erfc(-x / sqrt 2) + x phi(x) (erfc
again, for the tail); tanh form: 1 + tanh u and sech^2 u through e = exp(-2|u|), r = 1 / (1 + e)
(0.5 (1 + tanh u) is r or e r, sech^2 u = 4 e r^2): one exp, no 1 - tanh^2 cancellation."""

import math

import torch
from numba import cuda

from kernbench.cuda_launch import launch, per_dtype

THREADS = 256
UNROLL = 4  # elements per thread per tile, loaded before any is stored
TILE = THREADS * UNROLL
MAX_GRID = 2**31 - 1
INV_SQRT2 = 1.0 / math.sqrt(2.0)
TWO_SQRT_2_OVER_PI = 2.0 * math.sqrt(2.0 / math.pi)
K1 = 0.044715
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _map(T, f):
    """The tiled grid-stride kernel out[i] = f(x[i]) for the device function `f`."""

    @cuda.jit(fastmath=True)
    def gelu(x, out):
        n = x.shape[0]
        buf = cuda.local.array(UNROLL, T)
        for base in range(cuda.blockIdx.x * TILE + cuda.threadIdx.x, n, cuda.gridDim.x * TILE):
            for k in range(UNROLL):
                i = base + k * THREADS
                if i < n:
                    buf[k] = x[i]
            for k in range(UNROLL):
                i = base + k * THREADS
                if i < n:
                    out[i] = f(buf[k])

    return gelu


@per_dtype
def _kernels(T):
    @cuda.jit(device=True, fastmath=True)
    def gelu_exact(v):
        # Phi(v) = 0.5 erfc(-v / sqrt 2): no cancellation for v < 0 (1 + erf would)
        return T(0.5) * v * math.erfc(v * T(-INV_SQRT2))

    @cuda.jit(device=True, fastmath=True)
    def gelu_tanh(v):
        two_u = T(TWO_SQRT_2_OVER_PI) * v * (T(1) + T(K1) * v * v)
        # exp(-2u) -> inf for u << 0 gives v / inf = -0, the right limit
        return v / (T(1) + math.exp(-two_u))

    return {"none": _map(T, gelu_exact), "tanh": _map(T, gelu_tanh)}


def forward(x, *, approximate: str = "none"):
    x = x.contiguous()
    out = torch.empty_like(x)
    n = x.numel()
    if n:
        kernel = _kernels(x.dtype)[approximate]
        grid = min(-(-n // TILE), MAX_GRID)
        launch(kernel, grid, THREADS, x.view(-1), out.view(-1))
    return out


def _map_backward(T, df):
    """The tiled grid-stride kernel dx[i] = g[i] * df(x[i]) for the device function `df`."""

    @cuda.jit(fastmath=True)
    def gelu_backward(x, g, dx):
        n = x.shape[0]
        vx = cuda.local.array(UNROLL, T)
        vg = cuda.local.array(UNROLL, T)
        for base in range(cuda.blockIdx.x * TILE + cuda.threadIdx.x, n, cuda.gridDim.x * TILE):
            for k in range(UNROLL):
                i = base + k * THREADS
                if i < n:
                    vx[k] = x[i]
                    vg[k] = g[i]
            for k in range(UNROLL):
                i = base + k * THREADS
                if i < n:
                    dx[i] = vg[k] * df(vx[k])

    return gelu_backward


@per_dtype
def _backward_kernels(T):
    @cuda.jit(device=True, fastmath=True)
    def dgelu_exact(v):
        # Phi(v) + v phi(v); Phi as 0.5 erfc(-v / sqrt 2), accurate in the negative tail
        return (T(0.5) * math.erfc(v * T(-INV_SQRT2))
                + v * (T(INV_SQRT_2PI) * math.exp(T(-0.5) * v * v)))

    @cuda.jit(device=True, fastmath=True)
    def dgelu_tanh(v):
        v2 = v * v
        u = T(SQRT_2_OVER_PI) * v * (T(1) + T(K1) * v2)
        e = math.exp(T(-2) * abs(u))  # in (0, 1]: never overflows
        r = T(1) / (T(1) + e)
        er = e * r
        h = r if v >= T(0) else er  # 0.5 (1 + tanh u); u has the sign of v
        # + 0.5 v sech^2(u) du/dv, sech^2 u = 4 e r^2
        return h + T(TWO_SQRT_2_OVER_PI) * v * (T(1) + T(3 * K1) * v2) * er * r

    return {"none": _map_backward(T, dgelu_exact), "tanh": _map_backward(T, dgelu_tanh)}


def forward_train(x, *, approximate: str = "none"):
    x = x.contiguous()
    return forward(x, approximate=approximate), (x,)


def backward(saved, g, *, approximate: str = "none"):
    """d_x = g gelu'(x) from the saved x: one fused pass (reads x and g, writes d_x)."""
    (x,) = saved
    g = g.contiguous()
    dx = torch.empty_like(x)
    n = x.numel()
    if n:
        grid = min(-(-n // TILE), MAX_GRID)
        launch(_backward_kernels(x.dtype)[approximate], grid, THREADS, x.view(-1), g.view(-1),
               dx.view(-1))
    return (dx,)
