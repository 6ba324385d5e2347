"""NumPy layer norm: the mean by NumPy's pairwise sum, the variance from the centred values
(two-pass: no E[x^2] - E[x]^2 cancellation) via einsum, which forms the row dot products without
a squared temporary; the output buffer is then scaled and shifted in place. float16 inputs are
computed in float32 and rounded once, as the library ops do.

Training saves what the fused library kernels save: x, weight and the per-row mean and rstd in
the accumulation type (8 bytes a row in float32), not the normalised x; backward recomputes
xhat from them."""

import numpy as np


def _layer_norm(x, weight, bias, eps):
    """The output and the per-row statistics (mean, rstd) in the accumulation type."""
    acc = np.promote_types(x.dtype, np.float32)
    xa = x.astype(acc, copy=False)
    mean = xa.mean(axis=-1, keepdims=True)
    out = xa - mean
    var = np.einsum("ij,ij->i", out, out) / x.shape[-1]
    var += eps
    rstd = np.sqrt(var, out=var)
    np.reciprocal(rstd, out=rstd)
    out *= rstd[:, None]
    out *= weight.astype(acc, copy=False)
    out += bias.astype(acc, copy=False)
    return out.astype(x.dtype, copy=False), mean[:, 0], rstd


def forward(x, weight, bias, eps):
    return _layer_norm(x, weight, bias, eps)[0]


def forward_train(x, weight, bias, eps):
    out, mean, rstd = _layer_norm(x, weight, bias, eps)
    return out, (x, weight, mean, rstd)


def backward(saved, g, eps):
    """dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) with dxhat = g weight;
    dweight = sum_rows(g xhat), dbias = sum_rows(g). Two row-sized buffers (xhat, dx)."""
    x, weight, mean, rstd = saved
    acc = mean.dtype
    ga = g.astype(acc, copy=False)
    xhat = x.astype(acc, copy=False) - mean[:, None]
    xhat *= rstd[:, None]
    dweight = np.einsum("ij,ij->j", ga, xhat)
    dbias = ga.sum(axis=0)
    dx = ga * weight.astype(acc, copy=False)
    dot = np.einsum("ij,ij->i", dx, xhat) / x.shape[-1]
    mean_dxhat = dx.mean(axis=-1)
    xhat *= dot[:, None]
    dx -= xhat
    dx -= mean_dxhat[:, None]
    dx *= rstd[:, None]
    return (dx.astype(x.dtype, copy=False), dweight.astype(weight.dtype, copy=False),
            dbias.astype(weight.dtype, copy=False))
