"""NumPy SwiGLU: silu(a) * b as a / (1 + exp(-a)) * b with in-place ufuncs, so the output
buffer is the only array allocated (exp(-a) overflowing to inf gives the right limit, 0).

Training saves a and b, the inputs, and nothing else: backward recomputes sigmoid(a), as fused
SwiGLU kernels do (autograd through F.silu(a) * b also keeps silu(a))."""

import numpy as np


def forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.negative(a)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    np.divide(a, out, out=out)
    out *= b
    return out


def forward_train(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    return forward(a, b), (a, b)


def backward(saved: tuple, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d_a = g b s (1 + a (1 - s)), d_b = g a s with s = sigmoid(a) recomputed from the saved
    a. With e = exp(-|a|) (never overflows) and r = 1 / (1 + e): s = r and 1 - s = e r for
    a >= 0, the other way round for a < 0; neither is a difference, so neither cancels. The two
    gradients are built in the buffers of e and r; s and the sign mask are the temporaries."""
    a, b = saved
    e = np.abs(a)
    np.negative(e, out=e)
    np.exp(e, out=e)
    r = e + 1.0
    np.reciprocal(r, out=r)
    e *= r  # e r = exp(-|a|) / (1 + exp(-|a|))
    pos = a >= 0
    s = np.where(pos, r, e)
    np.copyto(r, e, where=pos)  # r is now 1 - s
    db = np.multiply(a, s, out=e)
    db *= g  # d_b = g a s
    da = np.multiply(a, r, out=r)
    da += 1.0
    da *= s
    da *= b
    da *= g  # d_a = g b s (1 + a (1 - s))
    return da, db
