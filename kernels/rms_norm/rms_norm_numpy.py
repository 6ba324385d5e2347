"""NumPy RMS norm: the row sums of squares by einsum (no squared temporary), then the output
buffer scaled in place. float16 inputs are computed in float32 and rounded once."""

import numpy as np


def forward(x, weight, eps):
    acc = np.promote_types(x.dtype, np.float32)
    xa = x.astype(acc, copy=False)
    ms = np.einsum("ij,ij->i", xa, xa) / x.shape[-1]
    ms += eps
    rstd = np.sqrt(ms, out=ms)
    np.reciprocal(rstd, out=rstd)
    out = xa * rstd[:, None]
    out *= weight.astype(acc, copy=False)
    return out.astype(x.dtype, copy=False)
