"""Triton GELU: one flat elementwise kernel, the form a compile-time constant. Loads are
upcast to float32 (float64 stays float64) and the result rounded once on store.

exact: 0.5 x (1 + erf(x / sqrt 2)) with tl.math.erf (libdevice erff on a GPU; the interpreter
evaluates it with NumPy). tanh: 0.5 x (1 + tanh(u)) = x * sigmoid(2u) = x / (1 + exp(-2u)),
exact algebra, one exp, no cancellation; libdevice.tanh has no interpreter implementation in
Triton 3.9. BLOCK=1024 / 4 warps as for any memory-bound pointwise kernel on an H100.

Training saves x only; the backward kernel recomputes gelu'(x) and multiplies by g in one pass.
Its tanh form writes 1 + tanh u and sech^2 u through e = exp(-2|u|) (one exp, no 1 - tanh^2,
which cancels in the tails); the exact form is Phi(x) + x phi(x) with tl.math.erf."""

import math

import torch
import triton
import triton.language as tl

BLOCK = 1024
NUM_WARPS = 4
INV_SQRT2 = tl.constexpr(1.0 / math.sqrt(2.0))  # jit code reads only constexpr globals
TWO_SQRT_2_OVER_PI = tl.constexpr(2.0 * math.sqrt(2.0 / math.pi))


@triton.jit
def _gelu_kernel(x_ptr, out_ptr, n, TANH: tl.constexpr, BLOCK: tl.constexpr):
    start = tl.program_id(0).to(tl.int64) * BLOCK
    offs = start + tl.arange(0, BLOCK)
    mask = offs < n
    ct = tl.float64 if out_ptr.dtype.element_ty == tl.float64 else tl.float32
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ct)
    if TANH:
        two_u = TWO_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
        y = x / (1.0 + tl.exp(-two_u))
    else:
        y = 0.5 * x * (1.0 + tl.math.erf(x * INV_SQRT2))
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


def forward(x: torch.Tensor, *, approximate: str = "none") -> torch.Tensor:
    x = x.contiguous()
    out = torch.empty_like(x)
    n = x.numel()
    _gelu_kernel[(triton.cdiv(n, BLOCK),)](x, out, n, TANH=approximate == "tanh", BLOCK=BLOCK,
                                          num_warps=NUM_WARPS)
    return out


INV_SQRT_2PI = tl.constexpr(1.0 / math.sqrt(2.0 * math.pi))
SQRT_2_OVER_PI = tl.constexpr(math.sqrt(2.0 / math.pi))


@triton.jit
def _gelu_backward_kernel(x_ptr, g_ptr, dx_ptr, n, TANH: tl.constexpr, BLOCK: tl.constexpr):
    start = tl.program_id(0).to(tl.int64) * BLOCK
    offs = start + tl.arange(0, BLOCK)
    mask = offs < n
    ct = tl.float64 if dx_ptr.dtype.element_ty == tl.float64 else tl.float32
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ct)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(ct)
    if TANH:
        # e = exp(-2|u|), r = 1 / (1 + e): 0.5 (1 + tanh u) = r or e r, sech^2 u = 4 e r^2
        x2 = x * x
        u = SQRT_2_OVER_PI * x * (1.0 + 0.044715 * x2)
        e = tl.exp(-2.0 * tl.abs(u))
        r = 1.0 / (1.0 + e)
        er = e * r
        h = tl.where(x >= 0, r, er)
        d = h + (2.0 * SQRT_2_OVER_PI) * x * (1.0 + 3.0 * 0.044715 * x2) * er * r
    else:
        cdf = 0.5 * (1.0 + tl.math.erf(x * INV_SQRT2))
        d = cdf + x * (INV_SQRT_2PI * tl.exp(-0.5 * x * x))
    tl.store(dx_ptr + offs, (g * d).to(dx_ptr.dtype.element_ty), mask=mask)


def forward_train(x: torch.Tensor, *, approximate: str = "none") -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
    x = x.contiguous()
    return forward(x, approximate=approximate), x


def backward(x: torch.Tensor, g: torch.Tensor, *, approximate: str = "none") -> tuple[
        torch.Tensor]:
    """d_x = g gelu'(x) from the saved x: one fused pass (reads x and g, writes d_x)."""
    g = g.contiguous()
    dx = torch.empty_like(x)
    n = x.numel()
    _gelu_backward_kernel[(triton.cdiv(n, BLOCK),)](x, g, dx, n, TANH=approximate == "tanh",
                                                   BLOCK=BLOCK, num_warps=NUM_WARPS)
    return (dx,)
