"""Triton tiled matmul (the tutorial's design): each program computes a BLOCK_M x BLOCK_N tile of
C, looping over K in BLOCK_K steps with tl.dot accumulating in float32; programs are ordered in
GROUP_M super-rows so tiles of B stay in L2. float32 uses IEEE products (no TF32) so it is held
to the same float32 tolerance as every other backend. Under the CPU interpreter tl.dot on
bfloat16 is wrong (triton#11584), so operands are upcast to float32 there."""

import os

import torch
import triton
import triton.language as tl

from kernbench.triton_offsets import offset_dtype

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

# bf16/fp16 run on the tensor cores (wgmma): large tiles, deep pipelines.
_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=3,
                  num_warps=8),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8}, num_stages=4,
                  num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4,
                  num_warps=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4,
                  num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=5,
                  num_warps=2),
]


@triton.jit
def _matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn,
                   stride_cm, stride_cn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, UPCAST: tl.constexpr,
                   IEEE: tl.constexpr, INDEX: tl.constexpr):
    pid = tl.program_id(0)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_n
    first_m = (pid // group) * GROUP_M
    size_m = min(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group) % size_m
    pid_n = (pid % group) // size_m
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    im = rm.to(INDEX)  # int32, or int64 for operands past 2**31 elements (triton_offsets)
    jn = rn.to(INDEX)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32 if c_ptr.dtype.element_ty != tl.float64
                   else tl.float64)
    for k0 in range(0, K, BLOCK_K):
        kk = (k0 + rk).to(INDEX)
        a = tl.load(a_ptr + im[:, None] * stride_am + kk[None, :] * stride_ak,
                    mask=(rm[:, None] < M) & ((k0 + rk)[None, :] < K), other=0.0)
        b = tl.load(b_ptr + kk[:, None] * stride_bk + jn[None, :] * stride_bn,
                    mask=((k0 + rk)[:, None] < K) & (rn[None, :] < N), other=0.0)
        if UPCAST:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        if IEEE:
            acc += tl.dot(a, b, input_precision="ieee")
        else:
            acc += tl.dot(a, b)
    tl.store(c_ptr + im[:, None] * stride_cm + jn[None, :] * stride_cn,
             acc.to(c_ptr.dtype.element_ty), mask=(rm[:, None] < M) & (rn[None, :] < N))


# float32/float64 with IEEE products run on the FMA units: an accumulator of BLOCK_M x BLOCK_N
# registers per program, so the tensor-core tiles above spill (compiled for sm_90: 128x256 and
# 128x128 needed 255 registers and 5.8 KB of stack). Smaller tiles keep everything in registers.
_CONFIGS_FMA = [
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=3,
                  num_warps=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=3,
                  num_warps=8),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=3,
                  num_warps=8),
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_stages=4,
                  num_warps=4),
]

# The operands' strides are in the key: the backward's transposed views (column-major g @ b.t()
# and a.t() @ g) load differently from the forward's row-major operands and tune separately.
_KEY = ["M", "N", "K", "stride_am", "stride_ak", "stride_bk", "stride_bn"]
_autotuned = triton.autotune(configs=_CONFIGS, key=_KEY)(_matmul_kernel)
_autotuned_fma = triton.autotune(configs=_CONFIGS_FMA, key=_KEY)(_matmul_kernel)


def forward(a, b):
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), device=a.device, dtype=a.dtype)
    upcast = INTERPRET and a.dtype in (torch.bfloat16, torch.float16)
    ieee = a.dtype in (torch.float32, torch.float64)
    args = (a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0),
            c.stride(1))
    consts = dict(UPCAST=upcast, IEEE=ieee, INDEX=offset_dtype(a, b, c))
    if INTERPRET:  # autotuning would time the interpreter: pick one config
        grid = (triton.cdiv(M, 32) * triton.cdiv(N, 32),)
        _matmul_kernel[grid](*args, BLOCK_M=32, BLOCK_N=32, BLOCK_K=32, GROUP_M=4, **consts)
    else:
        def grid(meta):
            return (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]),)

        (_autotuned_fma if ieee else _autotuned)[grid](*args, **consts)
    return c


def forward_train(a, b):
    return forward(a, b), (a, b)


def backward(saved, g):
    """dA = G @ B^T and dB = A^T @ G: the same tiled kernel on transposed views (it takes
    strides, so no copy is made)."""
    a, b = saved
    return forward(g, b.t()), forward(a.t(), g)
