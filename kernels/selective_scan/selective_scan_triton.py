"""Triton selective scan, chunked: each program owns BLOCK_D channels of one batch element and
walks the sequence in chunks of BLOCK_L steps, with the state [BLOCK_D, N] in registers
(mamba_ssm's CUDA kernel has the same structure: a block of channels, chunks of the sequence,
the state carried between chunks in registers, float32 throughout).

Per chunk: u, delta, z are loaded as [BLOCK_D, BLOCK_L] tiles and B, C as [N, BLOCK_L] tiles
(contiguous along L: coalesced loads); the pairs (exp(dt A), dt u B) of shape
[BLOCK_D, N, BLOCK_L] are combined with tl.associative_scan along L using
(a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2) (a parallel scan within the chunk, as decay
products, never exp of differences of cumulative sums); the chunk's states are
x_t = A_t x_in + B_t, the outputs <C_t, x_t> a reduction over N, and the last step's state is
carried to the next chunk. Steps past L are the identity (a = 1, b = 0); padded states
(N not a power of two) have A = B = C = 0, so they stay zero and contribute nothing.

exp is exp2 with A pre-multiplied by log2(e) (as mamba_ssm does). softplus is computed as
log1p(exp(x)) with an exact log1p (Kahan's trick: log(w) * x / (w - 1), w = 1 + x): the
plain log(1 + exp(x)) loses log2(1/dt) bits of dt (10 of 24 at the usual dt ~ 0.001), which
costs ~10x the output error (spec.py). Block sizes: autotuned over H100-shaped configs keyed
on (D, L, N); the interpreter uses one config."""

import os

import torch
import triton
import triton.language as tl

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
LOG2E = tl.constexpr(1.4426950408889634)  # jit code reads only constexpr globals

# Sized for Mamba's N = 16: each live [BLOCK_D, N, BLOCK_L] tensor is 4096 elements per 4 warps
# (32 registers a thread), so the scan's ~5 live tensors need ~160 of the 255 registers a thread
# may hold (an estimate: no GPU was available to check the compiled kernels for spills).
_CONFIGS = [
    triton.Config({"BLOCK_D": 4, "BLOCK_L": 64}, num_warps=4),
    triton.Config({"BLOCK_D": 8, "BLOCK_L": 32}, num_warps=4),
    triton.Config({"BLOCK_D": 8, "BLOCK_L": 64}, num_warps=8),
    triton.Config({"BLOCK_D": 16, "BLOCK_L": 32}, num_warps=8),
    triton.Config({"BLOCK_D": 4, "BLOCK_L": 128}, num_warps=8),
]


@triton.jit
def _combine(a1, b1, a2, b2):
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _log1p(x):
    w = 1.0 + x
    return tl.where(w == 1.0, x, tl.log(w) * (x / (w - 1.0)))


@triton.jit
def _selective_scan_fwd(u_ptr, delta_ptr, a_ptr, b_ptr, c_ptr, dskip_ptr, z_ptr, bias_ptr,
                        out_ptr, D, L, N,
                        stride_ub, stride_ud, stride_ul, stride_deltab, stride_deltad,
                        stride_deltal, stride_ad, stride_an, stride_bb, stride_bn, stride_bl,
                        stride_cb, stride_cn, stride_cl, stride_zb, stride_zd, stride_zl,
                        stride_ob, stride_od, stride_ol,
                        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
                        GATE: tl.constexpr, SOFTPLUS: tl.constexpr):
    pid_b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    cdt = tl.float64 if out_ptr.dtype.element_ty == tl.float64 else tl.float32
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    offs_l = tl.arange(0, BLOCK_L)
    d_ok = offs_d < D
    n_ok = offs_n < N
    a_log2 = tl.load(a_ptr + offs_d[:, None] * stride_ad + offs_n[None, :] * stride_an,
                     mask=d_ok[:, None] & n_ok[None, :], other=0.0).to(cdt) * LOG2E
    skip = tl.load(dskip_ptr + offs_d, mask=d_ok, other=0.0).to(cdt)
    bias = tl.load(bias_ptr + offs_d, mask=d_ok, other=0.0).to(cdt)
    state = tl.zeros((BLOCK_D, BLOCK_N), cdt)
    for l0 in range(0, L, BLOCK_L):
        cols = l0 + offs_l
        l_ok = cols < L
        dl_mask = d_ok[:, None] & l_ok[None, :]
        nl_mask = n_ok[:, None] & l_ok[None, :]
        u = tl.load(u_ptr + pid_b * stride_ub + offs_d[:, None] * stride_ud
                    + cols[None, :] * stride_ul, mask=dl_mask, other=0.0).to(cdt)
        dt = tl.load(delta_ptr + pid_b * stride_deltab + offs_d[:, None] * stride_deltad
                     + cols[None, :] * stride_deltal, mask=dl_mask, other=0.0).to(cdt)
        dt = dt + bias[:, None]
        if SOFTPLUS:
            dt = tl.where(dt <= 20.0, _log1p(tl.exp(dt)), dt)
        dt = tl.where(dl_mask, dt, 0.0)  # padding steps: a = 1, b = 0
        bm = tl.load(b_ptr + pid_b * stride_bb + offs_n[:, None] * stride_bn
                     + cols[None, :] * stride_bl, mask=nl_mask, other=0.0).to(cdt)
        cm = tl.load(c_ptr + pid_b * stride_cb + offs_n[:, None] * stride_cn
                     + cols[None, :] * stride_cl, mask=nl_mask, other=0.0).to(cdt)
        decay = tl.math.exp2(dt[:, None, :] * a_log2[:, :, None])        # [BD, BN, BL]
        drive = (dt * u)[:, None, :] * bm[None, :, :]
        pa, pb = tl.associative_scan((decay, drive), axis=2, combine_fn=_combine)
        x = pa * state[:, :, None] + pb
        y = tl.sum(x * cm[None, :, :], axis=1) + skip[:, None] * u        # [BD, BL]
        state = tl.sum(tl.where(offs_l[None, None, :] == BLOCK_L - 1, x, 0.0), axis=2)
        if GATE:
            zt = tl.load(z_ptr + pid_b * stride_zb + offs_d[:, None] * stride_zd
                         + cols[None, :] * stride_zl, mask=dl_mask, other=0.0).to(cdt)
            y = y * zt / (1.0 + tl.exp(-zt))
        tl.store(out_ptr + pid_b * stride_ob + offs_d[:, None] * stride_od
                 + cols[None, :] * stride_ol, y.to(out_ptr.dtype.element_ty), mask=dl_mask)


_autotuned = triton.autotune(configs=_CONFIGS, key=["D", "L", "N"])(_selective_scan_fwd)


def forward(u, delta, A, B, C, D, z, delta_bias, *, gate=True, delta_softplus=True):
    nb, nd, length = u.shape
    n = A.shape[1]
    out = torch.empty_like(u)
    args = (u, delta, A, B, C, D, z, delta_bias, out, nd, length, n, *u.stride(),
            *delta.stride(), *A.stride(), *B.stride(), *C.stride(), *z.stride(), *out.stride())
    meta = dict(BLOCK_N=max(2, triton.next_power_of_2(n)), GATE=bool(gate),
                SOFTPLUS=bool(delta_softplus))
    if INTERPRET:  # autotuning would time the interpreter: one config
        block_d, block_l = 16, 16
        _selective_scan_fwd[(nb, triton.cdiv(nd, block_d))](*args, BLOCK_D=block_d,
                                                             BLOCK_L=block_l, **meta)
    else:
        def grid(cfg):
            return (nb, triton.cdiv(nd, cfg["BLOCK_D"]))

        _autotuned[grid](*args, **meta)
    return out
