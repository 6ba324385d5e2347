"""NumPy RMS norm: the row sums of squares by einsum (no squared temporary), then the output
buffer scaled in place. float16 inputs are computed in float32 and rounded once.

Training saves x, weight and the per-row rstd in the accumulation type (4 bytes a row in
float32), not the normalised x; backward recomputes xhat = x rstd."""

import numpy as np


def _rms_norm(x, weight, eps):
    """The output and the per-row rstd in the accumulation type."""
    acc = np.promote_types(x.dtype, np.float32)
    xa = x.astype(acc, copy=False)
    ms = np.einsum("ij,ij->i", xa, xa) / x.shape[-1]
    ms += eps
    rstd = np.sqrt(ms, out=ms)
    np.reciprocal(rstd, out=rstd)
    out = xa * rstd[:, None]
    out *= weight.astype(acc, copy=False)
    return out.astype(x.dtype, copy=False), rstd


def forward(x, weight, eps):
    return _rms_norm(x, weight, eps)[0]


def forward_train(x, weight, eps):
    out, rstd = _rms_norm(x, weight, eps)
    return out, (x, weight, rstd)


def backward(saved, g, eps):
    """dx = rstd (dxhat - xhat mean(dxhat xhat)) with dxhat = g weight; dweight =
    sum_rows(g xhat). Two row-sized buffers (xhat, dx)."""
    x, weight, rstd = saved
    acc = rstd.dtype
    ga = g.astype(acc, copy=False)
    xhat = x.astype(acc, copy=False) * rstd[:, None]
    dweight = np.einsum("ij,ij->j", ga, xhat)
    dx = ga * weight.astype(acc, copy=False)
    dot = np.einsum("ij,ij->i", dx, xhat) / x.shape[-1]
    xhat *= dot[:, None]
    dx -= xhat
    dx *= rstd[:, None]
    return dx.astype(x.dtype, copy=False), dweight.astype(weight.dtype, copy=False)
