"""NumPy layer norm: the mean by NumPy's pairwise sum, the variance from the centred values
(two-pass: no E[x^2] - E[x]^2 cancellation) via einsum, which forms the row dot products without
a squared temporary; the output buffer is then scaled and shifted in place. float16 inputs are
computed in float32 and rounded once, as the library ops do."""

import numpy as np


def forward(x, weight, bias, eps):
    acc = np.promote_types(x.dtype, np.float32)
    xa = x.astype(acc, copy=False)
    out = xa - xa.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", out, out) / x.shape[-1]
    var += eps
    rstd = np.sqrt(var, out=var)
    np.reciprocal(rstd, out=rstd)
    out *= rstd[:, None]
    out *= weight.astype(acc, copy=False)
    out += bias.astype(acc, copy=False)
    return out.astype(x.dtype, copy=False)
