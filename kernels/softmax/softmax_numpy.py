"""NumPy softmax: in-place ufuncs so only one output-sized buffer is allocated."""

import numpy as np


def forward(x):
    out = x - x.max(axis=-1, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out
