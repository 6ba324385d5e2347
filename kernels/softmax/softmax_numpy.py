"""NumPy softmax: in-place ufuncs so only one output-sized buffer is allocated. The backward
pass needs only the output y (dx = y * (g - rowsum(g * y))), so that is all it saves."""

import numpy as np


def forward(x):
    out = x - x.max(axis=-1, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def forward_train(x):
    y = forward(x)
    return y, y


def backward(y, g):
    dx = g * y
    dot = dx.sum(axis=-1, keepdims=True)
    np.subtract(g, dot, out=dx)
    dx *= y
    return (dx,)
