"""NumPy RoPE (half-rotation layout): each output half written in place through out=, with one
half-sized scratch buffer for the second product (cos/sin broadcast over batch and heads).

Training saves the tables only: backward is the rotation by -angle of the cotangent."""

import numpy as np


def forward(q: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    half = q.shape[-1] // 2
    q1, q2 = q[..., :half], q[..., half:]
    out = np.empty_like(q)
    o1, o2 = out[..., :half], out[..., half:]
    tmp = np.empty_like(q1)
    np.multiply(q1, cos, out=o1)
    np.multiply(q2, sin, out=tmp)
    o1 -= tmp
    np.multiply(q2, cos, out=o2)
    np.multiply(q1, sin, out=tmp)
    o2 += tmp
    return out


def forward_train(q: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> tuple[np.ndarray, tuple]:
    return forward(q, cos, sin), (cos, sin)


def backward(saved: tuple, g: np.ndarray) -> tuple[np.ndarray]:
    """The rotation by -angle applied to g (the transpose of a rotation is its inverse): the
    forward with sin negated, written the same way, so no negated table is materialised."""
    cos, sin = saved
    half = g.shape[-1] // 2
    g1, g2 = g[..., :half], g[..., half:]
    dq = np.empty_like(g)
    d1, d2 = dq[..., :half], dq[..., half:]
    tmp = np.empty_like(g1)
    np.multiply(g1, cos, out=d1)
    np.multiply(g2, sin, out=tmp)
    d1 += tmp  # g1 cos + g2 sin
    np.multiply(g2, cos, out=d2)
    np.multiply(g1, sin, out=tmp)
    d2 -= tmp  # g2 cos - g1 sin
    return (dq,)
