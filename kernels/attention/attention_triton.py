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
def _attn_fwd(Q, K, V, Out, LSE, qk_scale, H, S,
              stride_qb, stride_qh, stride_qs, stride_qd,
              stride_kb, stride_kh, stride_ks, stride_kd,
              stride_vb, stride_vh, stride_vs, stride_vd,
              stride_ob, stride_oh, stride_os, stride_od,
              HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr,
              BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
              IEEE: tl.constexpr, STORE_LSE: tl.constexpr):
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
    if STORE_LSE:  # log2-sum-exp2 of the scaled scores: the backward recomputes P from it
        tl.store(LSE + off_bh.to(tl.int64) * S + offs_m, m_i + tl.math.log2(l_i), mask=row_ok)
    acc = acc / l_i[:, None]
    tl.store(Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_os
             + offs_d[None, :] * stride_od, acc.to(Out.dtype.element_ty),
             mask=row_ok[:, None] & d_ok[None, :])


_KEY = ["S", "HEAD_DIM", "CAUSAL"]
_autotuned = triton.autotune(configs=_CONFIGS, key=_KEY, prune_configs_by={
    "early_config_prune": _pruner(fma=False, limit=96)})(_attn_fwd)
_autotuned_fma = triton.autotune(configs=_CONFIGS_FMA, key=_KEY, prune_configs_by={
    "early_config_prune": _pruner(fma=True, limit=66)})(_attn_fwd)


def _meta(q, causal):
    head_dim = q.shape[-1]
    return dict(HEAD_DIM=head_dim, BLOCK_D=max(16, triton.next_power_of_2(head_dim)),
                CAUSAL=bool(causal),
                UPCAST=INTERPRET and q.dtype in (torch.bfloat16, torch.float16),
                IEEE=q.dtype in (torch.float32, torch.float64))


def _acc_dtype(q):
    return torch.float64 if q.dtype == torch.float64 else torch.float32


def _forward(q, k, v, causal, lse):
    batch, heads, s_len, head_dim = q.shape
    out = torch.empty(q.shape[:3] + v.shape[3:], device=q.device, dtype=q.dtype)
    qk_scale = LOG2E / math.sqrt(head_dim)
    args = (q, k, v, out, out if lse is None else lse, qk_scale, heads, s_len, *q.stride(),
            *k.stride(), *v.stride(), *out.stride())
    meta = dict(_meta(q, causal), STORE_LSE=lse is not None)
    if INTERPRET:  # autotuning would time the interpreter: one small config
        block_m, block_n = 32, 16
        _attn_fwd[(triton.cdiv(s_len, block_m), batch * heads)](*args, BLOCK_M=block_m,
                                                                 BLOCK_N=block_n, **meta)
    else:
        def grid(cfg):
            return (triton.cdiv(s_len, cfg["BLOCK_M"]), batch * heads)

        (_autotuned_fma if meta["IEEE"] else _autotuned)[grid](*args, **meta)
    return out


def forward(q, k, v, *, causal=False):
    return _forward(q, k, v, causal, None)


# --- backward (FlashAttention-2's two-kernel schedule) -------------------------------------


@triton.jit
def _mm(a, b, IEEE: tl.constexpr):
    if IEEE:
        return tl.dot(a, b, input_precision="ieee")
    return tl.dot(a, b)


@triton.jit
def _mma(a, b, acc, IEEE: tl.constexpr):
    if IEEE:
        return tl.dot(a, b, acc, input_precision="ieee")
    return tl.dot(a, b, acc)


@triton.jit
def _attn_bwd_delta(O, DO, Delta, H, S,
                    stride_ob, stride_oh, stride_os, stride_od,
                    stride_gb, stride_gh, stride_gs, stride_gd,
                    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr):
    """Delta = rowsum(dO * O) per query: the softmax backward's correction term."""
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1)
    b = (off_bh // H).to(tl.int64)
    h = (off_bh % H).to(tl.int64)
    acc_ty = tl.float64 if O.dtype.element_ty == tl.float64 else tl.float32
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_m < S)[:, None] & (offs_d < HEAD_DIM)[None, :]
    o = tl.load(O + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_os
                + offs_d[None, :] * stride_od, mask=mask, other=0.0).to(acc_ty)
    do = tl.load(DO + b * stride_gb + h * stride_gh + offs_m[:, None] * stride_gs
                 + offs_d[None, :] * stride_gd, mask=mask, other=0.0).to(acc_ty)
    tl.store(Delta + off_bh.to(tl.int64) * S + offs_m, tl.sum(o * do, 1), mask=offs_m < S)


@triton.jit
def _dkdv_tiles(dk, dv, k, v, q_base, do_base, lse_base, delta_base, stride_qs, stride_qd,
                stride_gs, stride_gd, offs_n, offs_d, S, qk_scale, lo, hi,
                HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, MASKED: tl.constexpr,
                UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """Accumulate one key tile's dk and dv over the query tiles [lo, hi). Query rows past S
    load as zeros (q, dO, lse, delta), which makes their contributions exactly zero."""
    d_ok = offs_d < HEAD_DIM
    for start_m in range(lo, hi, BLOCK_M):
        rows = start_m + tl.arange(0, BLOCK_M)
        row_ok = rows < S
        qt = tl.load(q_base + rows[None, :] * stride_qs + offs_d[:, None] * stride_qd,
                     mask=d_ok[:, None] & row_ok[None, :], other=0.0)
        do = tl.load(do_base + rows[:, None] * stride_gs + offs_d[None, :] * stride_gd,
                     mask=row_ok[:, None] & d_ok[None, :], other=0.0)
        lse = tl.load(lse_base + rows, mask=row_ok, other=0.0)
        delta = tl.load(delta_base + rows, mask=row_ok, other=0.0)
        if UPCAST:
            qt = qt.to(tl.float32)
            do = do.to(tl.float32)
        pt = tl.math.exp2(_mm(k, qt, IEEE) * qk_scale - lse[None, :])  # P^T: [keys, queries]
        if MASKED:  # the causal diagonal: query i sees key j only if i >= j
            pt = tl.where(rows[None, :] >= offs_n[:, None], pt, 0.0)
        dv = _mma(pt.to(do.dtype), do, dv, IEEE)
        dst = pt * (_mm(v, tl.trans(do), IEEE) - delta[None, :])
        dk = _mma(dst.to(qt.dtype), tl.trans(qt), dk, IEEE)
    return dk, dv


@triton.jit
def _attn_bwd_dkdv(Q, K, V, DO, LSE, Delta, DK, DV, qk_scale, sm_scale, H, S,
                   stride_qb, stride_qh, stride_qs, stride_qd,
                   stride_kb, stride_kh, stride_ks, stride_kd,
                   stride_vb, stride_vh, stride_vs, stride_vd,
                   stride_gb, stride_gh, stride_gs, stride_gd,
                   HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr,
                   BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
                   IEEE: tl.constexpr):
    """One program per BLOCK_N keys of one (batch, head): k and v stay in registers while the
    queries stream past; dk and dv are written once, so no atomics. DK and DV are contiguous
    [B, H, S, D]."""
    start_n = tl.program_id(0)
    off_bh = tl.program_id(1)
    b = (off_bh // H).to(tl.int64)
    h = (off_bh % H).to(tl.int64)
    acc_ty = tl.float64 if DK.dtype.element_ty == tl.float64 else tl.float32
    offs_n = start_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    kv_mask = (offs_n < S)[:, None] & (offs_d < HEAD_DIM)[None, :]
    k = tl.load(K + b * stride_kb + h * stride_kh + offs_n[:, None] * stride_ks
                + offs_d[None, :] * stride_kd, mask=kv_mask, other=0.0)
    v = tl.load(V + b * stride_vb + h * stride_vh + offs_n[:, None] * stride_vs
                + offs_d[None, :] * stride_vd, mask=kv_mask, other=0.0)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    dk = tl.zeros((BLOCK_N, BLOCK_D), acc_ty)
    dv = tl.zeros((BLOCK_N, BLOCK_D), acc_ty)
    q_base = Q + b * stride_qb + h * stride_qh
    do_base = DO + b * stride_gb + h * stride_gh
    row0 = off_bh.to(tl.int64) * S  # the (batch, head)'s first row in LSE, Delta, DK and DV
    lse_base = LSE + row0
    delta_base = Delta + row0
    lo = 0
    if CAUSAL:  # queries before this tile's first key see none of it; the diagonal is masked
        lo = start_n * BLOCK_N
        dk, dv = _dkdv_tiles(dk, dv, k, v, q_base, do_base, lse_base, delta_base, stride_qs,
                             stride_qd, stride_gs, stride_gd, offs_n, offs_d, S, qk_scale, lo,
                             tl.minimum(lo + BLOCK_N, S), HEAD_DIM, BLOCK_M, True, UPCAST, IEEE)
        lo = lo + BLOCK_N
    dk, dv = _dkdv_tiles(dk, dv, k, v, q_base, do_base, lse_base, delta_base, stride_qs,
                         stride_qd, stride_gs, stride_gd, offs_n, offs_d, S, qk_scale, lo, S,
                         HEAD_DIM, BLOCK_M, False, UPCAST, IEEE)
    out = offs_n[:, None] * HEAD_DIM + offs_d[None, :]
    tl.store(DK + row0 * HEAD_DIM + out, (dk * sm_scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + row0 * HEAD_DIM + out, dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.jit
def _dq_tiles(dq, q, do, lse, delta, k_base, v_base, stride_ks, stride_kd, stride_vs,
              stride_vd, offs_m, offs_d, S, qk_scale, lo, hi, HEAD_DIM: tl.constexpr,
              BLOCK_N: tl.constexpr, MASKED: tl.constexpr, CAUSAL: tl.constexpr,
              UPCAST: tl.constexpr, IEEE: tl.constexpr):
    """Accumulate one query tile's dq over the key tiles [lo, hi)."""
    d_ok = offs_d < HEAD_DIM
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + tl.arange(0, BLOCK_N)
        t_mask = d_ok[:, None]
        if MASKED:
            t_mask = t_mask & (cols[None, :] < S)
        kt = tl.load(k_base + cols[None, :] * stride_ks + offs_d[:, None] * stride_kd,
                     mask=t_mask, other=0.0)
        vt = tl.load(v_base + cols[None, :] * stride_vs + offs_d[:, None] * stride_vd,
                     mask=t_mask, other=0.0)
        if UPCAST:
            kt = kt.to(tl.float32)
            vt = vt.to(tl.float32)
        p = tl.math.exp2(_mm(q, kt, IEEE) * qk_scale - lse[:, None])
        if MASKED:
            keep = cols[None, :] < S
            if CAUSAL:
                keep = keep & (offs_m[:, None] >= cols[None, :])
            p = tl.where(keep, p, 0.0)
        ds = p * (_mm(do, vt, IEEE) - delta[:, None])
        dq = _mma(ds.to(kt.dtype), tl.trans(kt), dq, IEEE)
    return dq


@triton.jit
def _attn_bwd_dq(Q, K, V, DO, LSE, Delta, DQ, qk_scale, sm_scale, H, S,
                 stride_qb, stride_qh, stride_qs, stride_qd,
                 stride_kb, stride_kh, stride_ks, stride_kd,
                 stride_vb, stride_vh, stride_vs, stride_vd,
                 stride_gb, stride_gh, stride_gs, stride_gd,
                 HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr,
                 BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
                 IEEE: tl.constexpr):
    """One program per BLOCK_M queries: q and dO stay in registers while the keys stream past,
    the same two-stage loop as the forward (unmasked tiles, then the diagonal or ragged tail).
    DQ is contiguous [B, H, S, D]."""
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1)
    b = (off_bh // H).to(tl.int64)
    h = (off_bh % H).to(tl.int64)
    acc_ty = tl.float64 if DQ.dtype.element_ty == tl.float64 else tl.float32
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < S
    mask = row_ok[:, None] & (offs_d < HEAD_DIM)[None, :]
    q = tl.load(Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qs
                + offs_d[None, :] * stride_qd, mask=mask, other=0.0)
    do = tl.load(DO + b * stride_gb + h * stride_gh + offs_m[:, None] * stride_gs
                 + offs_d[None, :] * stride_gd, mask=mask, other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
        do = do.to(tl.float32)
    row0 = off_bh.to(tl.int64) * S  # the (batch, head)'s first row in LSE, Delta and DQ
    lse = tl.load(LSE + row0 + offs_m, mask=row_ok, other=0.0)
    delta = tl.load(Delta + row0 + offs_m, mask=row_ok, other=0.0)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    dq = tl.zeros((BLOCK_M, BLOCK_D), acc_ty)
    if CAUSAL:
        lo = start_m * BLOCK_M
        hi = tl.minimum((start_m + 1) * BLOCK_M, S)
    else:
        lo = (S // BLOCK_N) * BLOCK_N
        hi = S
    dq = _dq_tiles(dq, q, do, lse, delta, k_base, v_base, stride_ks, stride_kd, stride_vs,
                   stride_vd, offs_m, offs_d, S, qk_scale, 0, lo, HEAD_DIM, BLOCK_N, False,
                   CAUSAL, UPCAST, IEEE)
    dq = _dq_tiles(dq, q, do, lse, delta, k_base, v_base, stride_ks, stride_kd, stride_vs,
                   stride_vd, offs_m, offs_d, S, qk_scale, lo, hi, HEAD_DIM, BLOCK_N, True,
                   CAUSAL, UPCAST, IEEE)
    tl.store(DQ + row0 * HEAD_DIM + offs_m[:, None] * HEAD_DIM + offs_d[None, :],
             (dq * sm_scale).to(DQ.dtype.element_ty), mask=mask)


# dk/dv programs own BLOCK_N keys and stream BLOCK_M queries (BLOCK_N a multiple of BLOCK_M,
# for the causal diagonal); dq programs the reverse (BLOCK_M a multiple of BLOCK_N). The
# FlashAttention-2 tutorial's H100 shapes (32 x 128 / 128 x 32), plus smaller and square ones.
_DKDV_CONFIGS = [
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 128}, num_stages=3, num_warps=4),
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 128}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 64}, num_stages=3, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64}, num_stages=3, num_warps=4),
]
_DQ_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 32}, num_stages=3, num_warps=4),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 32}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 32}, num_stages=3, num_warps=4),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64}, num_stages=3, num_warps=4),
]
_DKDV_CONFIGS_FMA = [
    triton.Config({"BLOCK_M": 16, "BLOCK_N": 32}, num_stages=3, num_warps=4),
    triton.Config({"BLOCK_M": 16, "BLOCK_N": 32}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 16, "BLOCK_N": 64}, num_stages=3, num_warps=8),
]
_DQ_CONFIGS_FMA = [
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 16}, num_stages=3, num_warps=8),
    triton.Config({"BLOCK_M": 16, "BLOCK_N": 16}, num_stages=3, num_warps=4),
]


def _bwd_values_per_thread(config: triton.Config, block_d: int, fma: bool, owner: str) -> float:
    """fp32 values a thread holds in the backward: the two [owned, D] accumulators (dk, dv) or
    one (dq), the owned operand tiles, and two [BLOCK_M, BLOCK_N] score-shaped tiles; on FMA
    units the streamed tiles too."""
    bm, bn = config.kwargs["BLOCK_M"], config.kwargs["BLOCK_N"]
    owned, streamed = (bn, bm) if owner == "kv" else (bm, bn)
    n_acc = 2 if owner == "kv" else 1
    held = n_acc * owned * block_d + 2 * owned * block_d + 2 * bm * bn
    if fma:
        held += 2 * streamed * block_d
    return held / (32 * config.num_warps)


def _bwd_pruner(fma: bool, owner: str, limit: float):
    """Like the forward's pruner, with limits read off sm_90 builds of the causal backward
    (kernbench.gpu_compile) at head_dim 32, 64, 128 and 256: tensor-core configs up to 288
    values a thread compiled without stack and 320 and above spilled (dk/dv kernel; the dq
    kernel spilled at 448); FMA configs up to 88 did not spill, 151 and above did (two
    4-warp FMA configs that spilled at only one head dim each were dropped from the lists)."""
    def prune(configs, named_args, **kwargs):
        d = kwargs["BLOCK_D"]
        fits = [c for c in configs if _bwd_values_per_thread(c, d, fma, owner) <= limit]
        return fits or [min(configs, key=lambda c: _bwd_values_per_thread(c, d, fma, owner))]
    return prune


_BWD_KEY = ["S", "HEAD_DIM", "CAUSAL"]


def _tuned(kernel, configs, fma, owner, limit):
    return triton.autotune(configs=configs, key=_BWD_KEY, prune_configs_by={
        "early_config_prune": _bwd_pruner(fma, owner, limit)})(kernel)


_dkdv_tc = _tuned(_attn_bwd_dkdv, _DKDV_CONFIGS, False, "kv", 300)
_dkdv_fma = _tuned(_attn_bwd_dkdv, _DKDV_CONFIGS_FMA, True, "kv", 100)
_dq_tc = _tuned(_attn_bwd_dq, _DQ_CONFIGS, False, "q", 300)
_dq_fma = _tuned(_attn_bwd_dq, _DQ_CONFIGS_FMA, True, "q", 100)


def forward_train(q, k, v, *, causal=False):
    """Saves what FlashAttention saves: q, k, v, the output and one log2-sum-exp2 per query
    (float32; float64 for float64 inputs). The S x S matrix is never stored."""
    batch, heads, s_len, _ = q.shape
    lse = torch.empty((batch, heads, s_len), device=q.device, dtype=_acc_dtype(q))
    out = _forward(q, k, v, causal, lse)
    return out, (q, k, v, out, lse)


def backward(saved, g, *, causal=False):
    """FlashAttention-2's backward: Delta = rowsum(dO * O), then one kernel that owns key tiles
    (dk, dv) and one that owns query tiles (dq), each recomputing P = exp2(s - lse) tile by tile;
    P and dS are rounded to the input dtype for the bf16/fp16 tensor-core dots, as in the
    forward."""
    q, k, v, out, lse = saved
    batch, heads, s_len, head_dim = q.shape
    meta = _meta(q, causal)
    delta = torch.empty((batch, heads, s_len), device=q.device, dtype=_acc_dtype(q))
    _attn_bwd_delta[(triton.cdiv(s_len, 64), batch * heads)](
        out, g, delta, heads, s_len, *out.stride(), *g.stride(), HEAD_DIM=head_dim,
        BLOCK_D=meta["BLOCK_D"], BLOCK_M=64)
    dq, dk, dv = (torch.empty(x.shape, device=x.device, dtype=x.dtype) for x in (q, k, v))
    strides = (*q.stride(), *k.stride(), *v.stride(), *g.stride())
    sm_scale = 1.0 / math.sqrt(head_dim)
    common = (LOG2E * sm_scale, sm_scale, heads, s_len, *strides)
    if INTERPRET:  # one small config each (autotuning would time the interpreter)
        _attn_bwd_dkdv[(triton.cdiv(s_len, 32), batch * heads)](
            q, k, v, g, lse, delta, dk, dv, *common, BLOCK_M=16, BLOCK_N=32, **meta)
        _attn_bwd_dq[(triton.cdiv(s_len, 32), batch * heads)](
            q, k, v, g, lse, delta, dq, *common, BLOCK_M=32, BLOCK_N=16, **meta)
    else:
        fma = meta["IEEE"]
        (_dkdv_fma if fma else _dkdv_tc)[
            lambda c: (triton.cdiv(s_len, c["BLOCK_N"]), batch * heads)](
            q, k, v, g, lse, delta, dk, dv, *common, **meta)
        (_dq_fma if fma else _dq_tc)[
            lambda c: (triton.cdiv(s_len, c["BLOCK_M"]), batch * heads)](
            q, k, v, g, lse, delta, dq, *common, **meta)
    return dq, dk, dv
