"""Triton cross-entropy: one program per row streams the logits once in BLOCK_V chunks with an
online log-sum-exp (a running max m and a sum s rescaled by exp(m_old - m_new) when the max
grows, one exp per logit; Liger-Kernel's and Unsloth's design), the target's logit read
directly, and the label-smoothing sum of (z - m) kept centred alongside (shifted by k (m_old -
m_new) when the max moves). Each program writes its row's loss in float32 (float64 for float64
logits); a second, single-program kernel averages them in a fixed order (deterministic, unlike
an atomic add) and rounds the mean once to the logits' dtype."""

import torch
import triton
import triton.language as tl

MAX_BLOCK_V = 8192  # 32 KiB of float32 per chunk: 16 warps hold 16 values a thread
MEAN_BLOCK = 1024


@triton.jit
def _cross_entropy_rows(z_ptr, t_ptr, loss_ptr, vocab, z_stride, ls, ACC: tl.constexpr,
                        SMOOTH: tl.constexpr, BLOCK_V: tl.constexpr):
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


@triton.jit
def _mean(x_ptr, out_ptr, n, ACC: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros((BLOCK,), ACC)
    for start in range(0, n, BLOCK):
        acc += tl.load(x_ptr + start + offs, mask=start + offs < n, other=0.0)
    tl.store(out_ptr, (tl.sum(acc, axis=0) / n).to(out_ptr.dtype.element_ty))


def forward(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    n, vocab = logits.shape
    logits = logits.contiguous() if logits.stride(-1) != 1 else logits
    acc, acc_torch = ((tl.float64, torch.float64) if logits.dtype == torch.float64
                      else (tl.float32, torch.float32))
    rows = torch.empty(n, device=logits.device, dtype=acc_torch)
    out = torch.empty((), device=logits.device, dtype=logits.dtype)
    block_v = min(triton.next_power_of_2(vocab), MAX_BLOCK_V)
    _cross_entropy_rows[(n,)](logits, target, rows, vocab, logits.stride(0),
                              float(label_smoothing), ACC=acc, SMOOTH=label_smoothing > 0,
                              BLOCK_V=block_v, num_warps=max(1, min(16, block_v // 512)))
    _mean[(1,)](rows, out, n, ACC=acc, BLOCK=MEAN_BLOCK, num_warps=4)
    return out
