"""Triton squared distances: a tiled GEMM-form kernel made accurate by centring on the fly.

Each program computes a BLOCK_M x BLOCK_N tile of the output, looping over d in BLOCK_K steps:
it loads the x and y tiles, subtracts the centre mu (the mean of both sets, one small torch
reduction before the launch) in float32, accumulates xc . yc^T with tl.dot and the squared
norms of the same tiles, and stores ||xc||^2 + ||yc||^2 - 2 xc.yc clamped at 0. Centring
removes the cancellation of the GEMM form for points far from the origin. Recomputing the
tile norms and the centring costs ~(BLOCK_M + BLOCK_N) BLOCK_K elementwise operations per step
against BLOCK_M BLOCK_N BLOCK_K multiply-adds in the dot: ~2% for 128 x 128 tiles.

Since the centred tiles are float32, the dot runs in float32: IEEE for float32 inputs (TF32
would not meet float32 tolerance), TF32 for bf16/fp16 inputs (centred values make its 2^-11
product error ~0.1 bf16 eps). Under the CPU interpreter tl.dot on bf16 is wrong (triton#11584),
but the operands here are float32 already. Autotuned over tile shapes on a GPU; one config
under the interpreter (autotuning would time the interpreter)."""

import os

import torch
import triton
import triton.language as tl

from kernbench.triton_offsets import offset_dtype

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32}, num_stages=4, num_warps=8),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32}, num_stages=4, num_warps=8),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, num_stages=4, num_warps=4),
]


@triton.jit
def _sqdist_kernel(x_ptr, y_ptr, mu_ptr, out_ptr, M, N, K, stride_xm, stride_ym, stride_om,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                   IEEE: tl.constexpr, INDEX: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    im = rm.to(INDEX)  # row offsets: int32, or int64 past 2**31 elements (triton_offsets)
    jn = rn.to(INDEX)
    ct = tl.float64 if out_ptr.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ct)
    xsq = tl.zeros((BLOCK_M,), dtype=ct)
    ysq = tl.zeros((BLOCK_N,), dtype=ct)
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + rk
        kmask = kk < K
        mu = tl.load(mu_ptr + kk, mask=kmask, other=0.0).to(ct)
        xmask = (rm[:, None] < M) & kmask[None, :]
        ymask = kmask[:, None] & (rn[None, :] < N)
        x = tl.load(x_ptr + im[:, None] * stride_xm + kk[None, :], mask=xmask, other=0.0)
        # y loaded as a [BLOCK_K, BLOCK_N] tile: the dot's right operand, no transpose in registers
        y = tl.load(y_ptr + jn[None, :] * stride_ym + kk[:, None], mask=ymask, other=0.0)
        xc = tl.where(xmask, x.to(ct) - mu[None, :], 0.0)
        yc = tl.where(ymask, y.to(ct) - mu[:, None], 0.0)
        xsq += tl.sum(xc * xc, axis=1)
        ysq += tl.sum(yc * yc, axis=0)
        if IEEE:
            acc += tl.dot(xc, yc, input_precision="ieee")
        else:
            acc += tl.dot(xc, yc)
    d2 = xsq[:, None] + ysq[None, :] - 2.0 * acc
    d2 = tl.maximum(d2, 0.0)
    omask = (rm[:, None] < M) & (rn[None, :] < N)
    tl.store(out_ptr + im[:, None] * stride_om + jn[None, :], d2.to(out_ptr.dtype.element_ty),
             mask=omask)


# float32/float64 inputs: IEEE products on the FMA units hold the whole accumulator tile in
# registers; the tensor-core tiles above spilled there (compiled for sm_90), so smaller ones.
_CONFIGS_FMA = [
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, num_stages=3, num_warps=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 32}, num_stages=4, num_warps=4),
]

_autotuned = triton.autotune(configs=_CONFIGS, key=["M", "N", "K"])(_sqdist_kernel)
_autotuned_fma = triton.autotune(configs=_CONFIGS_FMA, key=["M", "N", "K"])(_sqdist_kernel)


def forward(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x, y = x.contiguous(), y.contiguous()
    M, K = x.shape
    N = y.shape[0]
    acc_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    mu = torch.cat((x, y)).to(acc_dtype).mean(dim=0)
    out = torch.empty((M, N), device=x.device, dtype=x.dtype)
    ieee = x.dtype in (torch.float32, torch.float64)
    args = (x, y, mu, out, M, N, K, x.stride(0), y.stride(0), out.stride(0))
    consts = dict(IEEE=ieee, INDEX=offset_dtype(x, y, out))
    if INTERPRET:
        grid = (triton.cdiv(M, 32), triton.cdiv(N, 32))
        _sqdist_kernel[grid](*args, BLOCK_M=32, BLOCK_N=32, BLOCK_K=32, **consts)
    else:
        def grid(meta):
            return (triton.cdiv(M, meta["BLOCK_M"]), triton.cdiv(N, meta["BLOCK_N"]))

        (_autotuned_fma if ieee else _autotuned)[grid](*args, **consts)
    return out
