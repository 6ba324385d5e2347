"""Triton focal loss: each program reduces a BLOCK of the flattened elements to one float32
partial sum (float64 for float64 inputs); a second, single-program kernel adds the partials in
a fixed order (deterministic, unlike an atomic add) and divides by the count. Per element the
stable form: z = (1 - 2t) x, l = log1p(exp(-|z|)), cross-entropy softplus(z) = max(z, 0) + l,
and (1 - p_t)^gamma = exp(-gamma softplus(-z)) with softplus(-z) = max(-z, 0) + l, so the
power costs one exp and no log (the kernel is memory-bound on a GPU either way). log1p is
Kahan's log(u) e / (u - 1) with u = 1 + e, accurate for tiny e: libdevice's log1p would do on a
GPU, but the CPU interpreter cannot run libdevice calls.

Training saves only the inputs. Backward is one elementwise kernel over the flattened elements:
the same e = exp(-|z|) and log1p, then d logits = (1 - 2t) alpha_t s^gamma (gamma p_t ce + s)
g / count with s = sigmoid(z) = 1 - p_t and s^gamma = exp(-gamma softplus(-z)) as in the
forward; g is read on the device (no host synchronisation)."""

import torch
import triton
import triton.language as tl

BLOCK = 4096
SUM_BLOCK = 1024


@triton.jit
def _log1p(e):
    u = 1.0 + e
    d = u - 1.0
    return tl.where(d == 0.0, e, tl.log(u) * (e / tl.where(d == 0.0, 1.0, d)))


@triton.jit
def _focal_partial(x_ptr, t_ptr, part_ptr, count, alpha, gamma, ACC: tl.constexpr,
                   BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < count
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
    positive = tl.load(t_ptr + offs, mask=mask, other=0.0) > 0.5
    z = tl.where(positive, -x, x)
    log1p_e = _log1p(tl.exp(-tl.abs(z)))
    ce = tl.maximum(z, 0.0) + log1p_e
    mod = tl.exp(-gamma * (tl.maximum(-z, 0.0) + log1p_e))
    alpha_t = tl.where(positive, alpha, 1.0 - alpha)
    loss = tl.where(mask, alpha_t * mod * ce, 0.0)
    tl.store(part_ptr + pid, tl.sum(loss, axis=0))


@triton.jit
def _finish_mean(part_ptr, out_ptr, n_parts, count, ACC: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros((BLOCK,), ACC)
    for start in range(0, n_parts, BLOCK):
        acc += tl.load(part_ptr + start + offs, mask=start + offs < n_parts, other=0.0)
    tl.store(out_ptr, (tl.sum(acc, axis=0) / count).to(out_ptr.dtype.element_ty))


def forward(logits: torch.Tensor, targets: torch.Tensor, alpha: float,
            gamma: float) -> torch.Tensor:
    x, t = logits.contiguous(), targets.contiguous()
    count = x.numel()
    acc, acc_torch = ((tl.float64, torch.float64) if x.dtype == torch.float64
                      else (tl.float32, torch.float32))
    n_parts = triton.cdiv(count, BLOCK)
    parts = torch.empty(n_parts, device=x.device, dtype=acc_torch)
    out = torch.empty((), device=x.device, dtype=x.dtype)
    _focal_partial[(n_parts,)](x, t, parts, count, float(alpha), float(gamma), ACC=acc,
                               BLOCK=BLOCK, num_warps=8)
    _finish_mean[(1,)](parts, out, n_parts, count, ACC=acc, BLOCK=SUM_BLOCK, num_warps=4)
    return out


# -- training --------------------------------------------------------------------------------
@triton.jit
def _focal_backward(x_ptr, t_ptr, g_ptr, d_ptr, count, alpha, gamma, ACC: tl.constexpr,
                    BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < count
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
    positive = tl.load(t_ptr + offs, mask=mask, other=0.0) > 0.5
    z = tl.where(positive, -x, x)
    e = tl.exp(-tl.abs(z))
    log1p_e = _log1p(e)
    ce = tl.maximum(z, 0.0) + log1p_e  # softplus(z) = -log(p_t)
    inv = 1.0 / (1.0 + e)
    s = tl.where(z >= 0, 1.0, e) * inv  # sigmoid(z) = 1 - p_t
    p_t = tl.where(z >= 0, e, 1.0) * inv
    mod = tl.exp(-gamma * (tl.maximum(-z, 0.0) + log1p_e))  # s^gamma
    scale = tl.load(g_ptr).to(ACC) / count
    grad = mod * (gamma * p_t * ce + s) * scale
    d = tl.where(positive, -alpha * grad, (1.0 - alpha) * grad)
    tl.store(d_ptr + offs, d.to(d_ptr.dtype.element_ty), mask=mask)


def forward_train(logits, targets, alpha, gamma):
    """Backward needs nothing beyond the inputs."""
    return forward(logits, targets, alpha, gamma), (logits, targets)


def backward(saved, g, alpha, gamma):
    logits, targets = saved
    x, t = logits.contiguous(), targets.contiguous()
    d = torch.empty_like(x)
    acc = tl.float64 if x.dtype == torch.float64 else tl.float32
    _focal_backward[(triton.cdiv(x.numel(), BLOCK),)](x, t, g.reshape(1), d, x.numel(),
                                                       float(alpha), float(gamma), ACC=acc,
                                                       BLOCK=BLOCK, num_warps=8)
    return (d,)
