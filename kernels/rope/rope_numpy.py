"""NumPy RoPE (half-rotation layout): each output half written in place through out=, with one
half-sized scratch buffer for the second product (cos/sin broadcast over batch and heads)."""

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
