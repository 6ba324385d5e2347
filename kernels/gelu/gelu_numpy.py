"""NumPy GELU. The tanh form with in-place ufuncs (one output buffer, one temporary). NumPy
has no erf ufunc, so the exact form calls scipy.special.erf, the NumPy-ecosystem ufunc (Cephes
inside; float32 inputs are evaluated in double and rounded once).

Training saves x only; backward recomputes the activation's derivative from it."""

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


INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
K1 = 0.044715


def forward_train(x: np.ndarray, *, approximate: str = "none") -> tuple[np.ndarray, np.ndarray]:
    return forward(x, approximate=approximate), x


def backward(x: np.ndarray, g: np.ndarray, *, approximate: str = "none") -> tuple[np.ndarray]:
    """d_x = g gelu'(x), recomputed from the saved x, each form differentiated exactly."""
    if approximate == "tanh":
        # gelu' = 0.5 (1 + tanh u) + 0.5 x sech^2(u) k0 (1 + 3 k1 x^2). With p = 1 / (1 +
        # exp(-2u)) = 0.5 (1 + tanh u) and q = 1 / (1 + exp(2u)) = 1 - p: sech^2 u = 4 p q,
        # no 1 - tanh^2, which cancels in the tails; an exp overflowing to inf gives 0, the
        # limit. (Two exps, not a select on the sign of u: NumPy's masked copies do not
        # vectorise and cost ~6 exps on random signs.)
        x2 = x * x
        m2u = x2 * K1
        m2u += 1.0
        m2u *= x
        m2u *= -2.0 * SQRT_2_OVER_PI  # -2u, u = k0 (x + k1 x^3)
        with np.errstate(over="ignore"):
            q = np.negative(m2u)
            np.exp(q, out=q)
            p = np.exp(m2u, out=m2u)
        p += 1.0
        np.reciprocal(p, out=p)  # 0.5 (1 + tanh u)
        q += 1.0
        np.reciprocal(q, out=q)  # 1 - p
        x2 *= 3.0 * K1
        x2 += 1.0
        x2 *= 2.0 * SQRT_2_OVER_PI  # 2 k0 (1 + 3 k1 x^2)
        x2 *= x
        x2 *= p
        x2 *= q  # 0.5 x sech^2(u) k0 (1 + 3 k1 x^2)
        dx = np.add(p, x2, out=p)
        dx *= g
        return (dx,)
    from scipy.special import erfc

    # gelu' = Phi(x) + x phi(x); Phi(x) = 0.5 erfc(-x / sqrt 2) has no cancellation for x < 0
    dx = x * x.dtype.type(-1.0 / math.sqrt(2.0))
    erfc(dx, out=dx)
    dx *= 0.5
    pdf = x * x
    pdf *= -0.5
    np.exp(pdf, out=pdf)
    pdf *= INV_SQRT_2PI
    pdf *= x
    dx += pdf
    dx *= g
    return (dx,)
