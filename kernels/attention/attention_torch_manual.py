"""torch attention written out: q @ k^T, causal mask, softmax, @ v, all in float32 (bf16/fp16
inputs are upcast first, the precision the library kernels keep internally) and cast back.

This is the textbook form that materialises the [B, H, S, S] score matrix: eagerly four
full-size passes over it; torch.compile can fuse the scale, mask and softmax into one kernel
between the two matmuls, but still writes the matrix."""

import math

import torch


def forward(q, k, v, *, causal=False):
    dtype = q.dtype
    if dtype in (torch.bfloat16, torch.float16):
        q, k, v = q.float(), k.float(), v.float()
    s_len = q.shape[-2]
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        future = torch.ones(s_len, s_len, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return torch.matmul(weights, v).to(dtype)
