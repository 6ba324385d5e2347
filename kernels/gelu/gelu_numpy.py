"""NumPy GELU. The tanh form with in-place ufuncs (one output buffer, one temporary). NumPy
has no erf ufunc, so the exact form calls scipy.special.erf, the NumPy-ecosystem ufunc (Cephes
inside; float32 inputs are evaluated in double and rounded once)."""

import math

import numpy as np

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def forward(x: np.ndarray, *, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        u = x * x
        u *= 0.044715
        u += 1.0
        u *= x
        u *= SQRT_2_OVER_PI  # sqrt(2/pi) * (x + 0.044715 x^3)
        np.tanh(u, out=u)
        u += 1.0
        u *= x
        u *= 0.5
        return u
    from scipy.special import erf

    out = x * x.dtype.type(1.0 / math.sqrt(2.0))  # a scalar of x's type: no upcast
    erf(out, out=out)
    out += 1.0
    out *= x
    out *= 0.5
    return out
