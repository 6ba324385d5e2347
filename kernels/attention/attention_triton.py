"""Triton flash attention, forward (FlashAttention-2's schedule, as in the Triton tutorial).

Each program owns BLOCK_M query rows of one (batch, head) and streams the keys and values in
BLOCK_N tiles, keeping the running row max m, the running denominator l and the [BLOCK_M, D]
output accumulator in registers (online softmax): the S x S matrix never exists. The scale is
folded with log2(e) so the exponentials are exp2. With `causal`, tiles entirely above the
diagonal are never loaded: the loop runs in two stages, the tiles fully below the diagonal
without any mask arithmetic, then the diagonal tiles with the mask (the same split handles the
ragged last tile when S is not a multiple of BLOCK_N).

Precision: accumulators are float32 (float64 for float64 inputs); for bf16/fp16 the weights P
are rounded to the input dtype for the P.V tensor-core dot, as FlashAttention does; float32
dots use IEEE products (TF32 would not meet the float32 tolerance). Under the CPU interpreter
tl.dot on bfloat16 is wrong (triton#11584), so operands are upcast to float32 there.

Block sizes: autotuned, keyed on the sequence length, head dim and causality, over H100-shaped
configs: tensor-core tiles for bf16/fp16 (BLOCK_M 64-128, BLOCK_N 32-128, 4-8 warps, 3-4
pipeline stages), smaller FMA tiles for IEEE float32/float64; the interpreter uses one small
config (its cost is a Python loop over programs and tiles)."""

import math
import os

import torch
import triton
import triton.language as tl

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
LOG2E = 1.4426950408889634

# bf16/fp16: tensor-core (wgmma) tiles, the FlashAttention-2 tutorial's H100 choices (plus
# 8-warp tiles for head_dim 256).
_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64}, num_stages=3, num_warps=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 32}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64}, num_stages=4, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 32}, num_stages=3, num_warps=8),
]

# float32/float64 with IEEE products run on the FMA units, with the q tile, the scores, the k
# and v tiles and the output accumulator all in registers: much smaller tiles.
_CONFIGS_FMA = [
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 32}, num_stages=3, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 32}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 32}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 16, "BLOCK_N": 16}, num_stages=3, num_warps=4),
    triton.Config({"BLOCK_M": 16, "BLOCK_N": 16}, num_stages=3, num_warps=8),
]


def _values_per_thread(config: triton.Config, block_d: int, fma: bool) -> float:
    """fp32 values a thread holds: the accumulators (scores and output) on tensor cores, also
    the q, k and v tiles on FMA units."""
    bm, bn = config.kwargs["BLOCK_M"], config.kwargs["BLOCK_N"]
    held = bm * block_d + bm * bn + (bm * block_d + 2 * block_d * bn if fma else 0)
    return held / (32 * config.num_warps)


def _pruner(fma: bool, limit: float):
    """Drop configs that would spill registers for this head dim (keeping the leanest if none
    fits). The limits were read off sm_90 builds (kernbench.gpu_compile) at head_dim 32 to 256:
    every tensor-core config up to 96 values a thread compiled without stack, and none above
    (128 spilled); FMA configs up to 66 did, one at 68 spilled. A coarse model, on the safe
    side."""
    def prune(configs, named_args, **kwargs):
        fits = [c for c in configs if _values_per_thread(c, kwargs["BLOCK_D"], fma) <= limit]
        return fits or [min(configs, key=lambda c: _values_per_thread(c, kwargs["BLOCK_D"], fma))]
    return prune


@triton.jit
def _attn_tiles(acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
                offs_m, offs_d, S, qk_scale, lo, hi, HEAD_DIM: tl.constexpr,
                BLOCK_N: tl.constexpr, MASKED: tl.constexpr, CAUSAL: tl.constexpr,
                UPCAST: tl.constexpr, IEEE: tl.constexpr):
    offs_n = tl.arange(0, BLOCK_N)
    d_ok = offs_d < HEAD_DIM
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n
        kt_mask = d_ok[:, None]
        v_mask = d_ok[None, :]
        if MASKED:
            kt_mask = kt_mask & (cols[None, :] < S)
            v_mask = v_mask & (cols[:, None] < S)
        kt = tl.load(k_base + cols[None, :] * stride_kn + offs_d[:, None] * stride_kd,
                     mask=kt_mask, other=0.0)
        v = tl.load(v_base + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd,
                    mask=v_mask, other=0.0)
        if UPCAST:
            kt = kt.to(tl.float32)
            v = v.to(tl.float32)
        if IEEE:
            qk = tl.dot(q, kt, input_precision="ieee")
        else:
            qk = tl.dot(q, kt)
        if MASKED:
            keep = cols[None, :] < S
            if CAUSAL:
                keep = keep & (offs_m[:, None] >= cols[None, :])
            qk = qk * qk_scale + tl.where(keep, 0.0, -1.0e6)
            m_ij = tl.maximum(m_i, tl.max(qk, 1))
            qk = qk - m_ij[:, None]
        else:
            m_ij = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
            qk = qk * qk_scale - m_ij[:, None]
        p = tl.math.exp2(qk)
        alpha = tl.math.exp2(m_i - m_ij)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        if IEEE:
            acc = tl.dot(p.to(v.dtype), v, acc, input_precision="ieee")
        else:
            acc = tl.dot(p.to(v.dtype), v, acc)
        m_i = m_ij
    return acc, l_i, m_i


@triton.jit
def _attn_fwd(Q, K, V, Out, qk_scale, H, S,
              stride_qb, stride_qh, stride_qs, stride_qd,
              stride_kb, stride_kh, stride_ks, stride_kd,
              stride_vb, stride_vh, stride_vs, stride_vd,
              stride_ob, stride_oh, stride_os, stride_od,
              HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr,
              BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
              IEEE: tl.constexpr):
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1)
    b = (off_bh // H).to(tl.int64)
    h = (off_bh % H).to(tl.int64)
    acc_ty = tl.float64 if Out.dtype.element_ty == tl.float64 else tl.float32
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < S
    d_ok = offs_d < HEAD_DIM
    q = tl.load(Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qs
                + offs_d[None, :] * stride_qd, mask=row_ok[:, None] & d_ok[None, :], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    m_i = tl.full((BLOCK_M,), -float("inf"), acc_ty)
    l_i = tl.zeros((BLOCK_M,), acc_ty)
    acc = tl.zeros((BLOCK_M, BLOCK_D), acc_ty)
    if CAUSAL:
        lo = start_m * BLOCK_M  # keys below every row of the block: no mask needed
        hi = tl.minimum((start_m + 1) * BLOCK_M, S)
    else:
        lo = (S // BLOCK_N) * BLOCK_N  # full tiles; the ragged tail, if any, is masked
        hi = S
    acc, l_i, m_i = _attn_tiles(acc, l_i, m_i, q, k_base, v_base, stride_ks, stride_kd,
                                stride_vs, stride_vd, offs_m, offs_d, S, qk_scale, 0, lo,
                                HEAD_DIM, BLOCK_N, False, CAUSAL, UPCAST, IEEE)
    acc, l_i, m_i = _attn_tiles(acc, l_i, m_i, q, k_base, v_base, stride_ks, stride_kd,
                                stride_vs, stride_vd, offs_m, offs_d, S, qk_scale, lo, hi,
                                HEAD_DIM, BLOCK_N, True, CAUSAL, UPCAST, IEEE)
    acc = acc / l_i[:, None]
    tl.store(Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_os
             + offs_d[None, :] * stride_od, acc.to(Out.dtype.element_ty),
             mask=row_ok[:, None] & d_ok[None, :])


_KEY = ["S", "HEAD_DIM", "CAUSAL"]
_autotuned = triton.autotune(configs=_CONFIGS, key=_KEY, prune_configs_by={
    "early_config_prune": _pruner(fma=False, limit=96)})(_attn_fwd)
_autotuned_fma = triton.autotune(configs=_CONFIGS_FMA, key=_KEY, prune_configs_by={
    "early_config_prune": _pruner(fma=True, limit=66)})(_attn_fwd)


def forward(q, k, v, *, causal=False):
    batch, heads, s_len, head_dim = q.shape
    out = torch.empty(q.shape[:3] + v.shape[3:], device=q.device, dtype=q.dtype)
    qk_scale = LOG2E / math.sqrt(head_dim)
    args = (q, k, v, out, qk_scale, heads, s_len, *q.stride(), *k.stride(), *v.stride(),
            *out.stride())
    meta = dict(HEAD_DIM=head_dim, BLOCK_D=max(16, triton.next_power_of_2(head_dim)),
                CAUSAL=bool(causal), UPCAST=INTERPRET and q.dtype in (torch.bfloat16,
                                                                      torch.float16),
                IEEE=q.dtype in (torch.float32, torch.float64))
    if INTERPRET:  # autotuning would time the interpreter: one small config
        block_m, block_n = 32, 16
        _attn_fwd[(triton.cdiv(s_len, block_m), batch * heads)](*args, BLOCK_M=block_m,
                                                                 BLOCK_N=block_n, **meta)
    else:
        def grid(cfg):
            return (triton.cdiv(s_len, cfg["BLOCK_M"]), batch * heads)

        (_autotuned_fma if meta["IEEE"] else _autotuned)[grid](*args, **meta)
    return out
