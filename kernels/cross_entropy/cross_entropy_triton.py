"""Triton cross-entropy: one program per row streams the logits once in BLOCK_V chunks with an
online log-sum-exp (a running max m and a sum s rescaled by exp(m_old - m_new) when the max
grows, one exp per logit; Liger-Kernel's and Unsloth's design), the target's logit read
directly, and the label-smoothing sum of (z - m) kept centred alongside (shifted by k (m_old -
m_new) when the max moves). Each program writes its row's loss in float32 (float64 for float64
logits); a second, single-program kernel averages them in a fixed order (deterministic, unlike
an atomic add) and rounds the mean once to the logits' dtype.

Training: the row kernel also stores the row's log-sum-exp m + log(s) (LSE; float32 for float32
and narrower logits: 4 bytes a row), saved with the logits and targets, as flash-attention's and
Liger-Kernel's cross-entropy do. Backward recomputes softmax = exp(z - lse) on a 2-D grid (rows
x vocabulary chunks), one read of the logits and one write of the gradient:
d logits = (softmax - (1 - ls) onehot(target) - ls / V) g / N, with g read on the device (no
host synchronisation)."""

import os

import torch
import triton
import triton.language as tl

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
MAX_BLOCK_V = 8192  # 32 KiB of float32 per chunk: 16 warps hold 16 values a thread
MEAN_BLOCK = 1024
BACKWARD_BLOCK_V = 4096  # backward: one chunk of a row per program, enough programs for any GPU
#: the CPU interpreter runs programs one after another at a fixed cost each: whole rows there.
#: Chosen by whether Triton interprets, not by the tensors' device, so that
#: kernbench.gpu_compile (CPU tensors, compiled for a GPU) builds the GPU's BACKWARD_BLOCK_V.
INTERPRETED_BLOCK_V = 16384


@triton.jit
def _cross_entropy_rows(z_ptr, t_ptr, loss_ptr, lse_ptr, vocab, z_stride, ls, ACC: tl.constexpr,
                        SMOOTH: tl.constexpr, BLOCK_V: tl.constexpr, LSE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    z_row = z_ptr + row * z_stride
    offs = tl.arange(0, BLOCK_V)
    # the first chunk initialises the running max, sum and centred sum
    mask = offs < vocab
    z = tl.load(z_row + offs, mask=mask, other=-float("inf")).to(ACC)
    m = tl.max(z, axis=0)
    s = tl.sum(tl.exp(z - m), axis=0)
    c = tl.sum(tl.where(mask, z - m, 0.0), axis=0)
    for start in range(BLOCK_V, vocab, BLOCK_V):
        mask = start + offs < vocab
        z = tl.load(z_row + start + offs, mask=mask, other=-float("inf")).to(ACC)
        m_new = tl.maximum(m, tl.max(z, axis=0))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new), axis=0)
        if SMOOTH:
            c = c + start * (m - m_new) + tl.sum(tl.where(mask, z - m_new, 0.0), axis=0)
        m = m_new
    target = tl.load(t_ptr + row)
    z_t = tl.load(z_row + target).to(ACC)
    loss = tl.log(s) + (1.0 - ls) * (m - z_t)
    if SMOOTH:
        loss -= ls * c / vocab
    tl.store(loss_ptr + row, loss)
    if LSE:
        tl.store(lse_ptr + row, m + tl.log(s))


@triton.jit
def _mean(x_ptr, out_ptr, n, ACC: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros((BLOCK,), ACC)
    for start in range(0, n, BLOCK):
        acc += tl.load(x_ptr + start + offs, mask=start + offs < n, other=0.0)
    tl.store(out_ptr, (tl.sum(acc, axis=0) / n).to(out_ptr.dtype.element_ty))


def _forward(logits, target, label_smoothing, lse):
    """The mean loss; with `lse`, also each row's log-sum-exp (else None)."""
    n, vocab = logits.shape
    logits = logits.contiguous() if logits.stride(-1) != 1 else logits
    acc, acc_torch = ((tl.float64, torch.float64) if logits.dtype == torch.float64
                      else (tl.float32, torch.float32))
    rows = torch.empty(n, device=logits.device, dtype=acc_torch)
    lse_rows = torch.empty_like(rows) if lse else rows  # an unused pointer when not training
    out = torch.empty((), device=logits.device, dtype=logits.dtype)
    block_v = min(triton.next_power_of_2(vocab), MAX_BLOCK_V)
    _cross_entropy_rows[(n,)](logits, target, rows, lse_rows, vocab, logits.stride(0),
                              float(label_smoothing), ACC=acc, SMOOTH=label_smoothing > 0,
                              BLOCK_V=block_v, LSE=lse, num_warps=max(1, min(16, block_v // 512)))
    _mean[(1,)](rows, out, n, ACC=acc, BLOCK=MEAN_BLOCK, num_warps=4)
    return out, (lse_rows if lse else None)


def forward(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    return _forward(logits, target, label_smoothing, lse=False)[0]


# -- training --------------------------------------------------------------------------------
@triton.jit
def _cross_entropy_backward(z_ptr, t_ptr, lse_ptr, g_ptr, d_ptr, n, vocab, z_stride, d_stride,
                            ls_hi, ls_lo, ACC: tl.constexpr, BLOCK_V: tl.constexpr):
    """Program (row, chunk): d = (exp(z - lse) - q) g / N on one chunk of one row. A float
    argument arrives as float32, so ls comes as two float32 parts summed in ACC (float64 ls)."""
    row = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    mask = offs < vocab
    z = tl.load(z_ptr + row * z_stride + offs, mask=mask, other=0.0).to(ACC)
    lse = tl.load(lse_ptr + row)
    target = tl.load(t_ptr + row)
    scale = tl.load(g_ptr).to(ACC) / n
    ls = tl.zeros((BLOCK_V,), ACC) + ls_hi + ls_lo
    q = tl.where(offs == target, 1.0 - ls, 0.0) + ls / vocab
    d = (tl.exp(z - lse) - q) * scale
    tl.store(d_ptr + row * d_stride + offs, d.to(d_ptr.dtype.element_ty), mask=mask)


def forward_train(logits, target, label_smoothing):
    out, lse = _forward(logits, target, label_smoothing, lse=True)
    return out, (logits, target, lse)


def backward(saved, g, label_smoothing):
    logits, target, lse = saved
    n, vocab = logits.shape
    logits = logits.contiguous() if logits.stride(-1) != 1 else logits
    d = torch.empty_like(logits)
    block_v = min(triton.next_power_of_2(vocab),
                  INTERPRETED_BLOCK_V if INTERPRET else BACKWARD_BLOCK_V)
    acc = tl.float64 if logits.dtype == torch.float64 else tl.float32
    ls_hi = float(torch.tensor(label_smoothing, dtype=torch.float32))
    _cross_entropy_backward[(n, triton.cdiv(vocab, block_v))](
        logits, target, lse, g.reshape(1), d, n, vocab, logits.stride(0), d.stride(0),
        ls_hi, float(label_smoothing) - ls_hi, ACC=acc, BLOCK_V=block_v,
        num_warps=max(1, min(8, block_v // 512)))
    return (d,)
