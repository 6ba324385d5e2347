"""GELU (Hendrycks and Gimpel, 2016), elementwise on x [rows, cols], in its two forms:

    approximate = "none":  gelu(x) = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
    approximate = "tanh":  gelu(x) = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))

(the names of torch.nn.functional.gelu's `approximate`). The two differ by up to ~5e-4, far
above float32's tolerance, so a backend that computes the wrong form fails.

The reference is float64 NumPy. NumPy has no erf, and a spec may need nothing beyond NumPy, so
erfc is evaluated here with Cephes' rational approximations (S. L. Moshier, as in Cephes
ndtr.c and SciPy's special functions; relative error ~1e-16, checked against math.erfc in the
tests). The exact form uses x * 0.5 * erfc(-x / sqrt(2)), which has no cancellation for x < 0.

Backends: numpy calls scipy.special.erf for the exact form (NumPy's own ufuncs have none);
numba calls math.erf / math.tanh in the input's precision; torch is F.gelu (manual: the formula with
torch.erf / torch.tanh in float32); jax is jax.nn.gelu; Triton uses tl.math.erf, and for the
tanh form the identity 0.5 * (1 + tanh(u)) = sigmoid(2u), since libdevice's tanh does not run
under the interpreter (and the identity needs only one exp).

Inputs: standard normal scaled by 3: the negative tail (gelu -> 0), the curved region and the
linear side all carry weight. Tolerance: elementwise, no reduction: 8 eps in float32 (libm
erf/erff are within a few ulp), 2 eps in bfloat16 (one rounding of an fp32 result ~0.3 eps).

Backward: each form's own derivative (the tanh form's is NOT the exact form's: they differ by up
to ~9e-4, near x = 2, so a backend that differentiates the wrong form fails):

    none:  gelu'(x) = Phi(x) + x phi(x),   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    tanh:  gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x sech^2(u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
           with u = sqrt(2/pi) (x + 0.044715 x^3)

d_x = g gelu'(x). The reference evaluates Phi as 0.5 erfc(-x / sqrt 2) and sech^2(u) from
e = exp(-2|u|) as 4 e / (1 + e)^2: both without cancellation in the tails. A fused backward
saves only x and recomputes the activation's derivative, as torch's GeluBackward does.
"""

import math

import numpy as np

from kernbench import KernelSpec, Tolerance

FORMS = ("none", "tanh")

# Cephes ndtr.c: erf(x) = x T(x^2) / U(x^2) for |x| < 1; erfc(x) = exp(-x^2) P(x) / Q(x) for
# 1 <= x < 8 and exp(-x^2) R(x) / S(x) for x >= 8 (U, Q, S monic: leading 1 omitted).
_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
      7.00332514112805075473e3, 5.55923013010394962768e4)
_U = (3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
      2.26290000613890934246e4, 4.92673942608635921086e4)
_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
      4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
      9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_Q = (1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
      9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
      1.65666309194161350182e3, 5.57535340817727675546e2)
_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
      6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_S = (2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
      1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)


def _polevl(x: np.ndarray, coef: tuple[float, ...]) -> np.ndarray:
    y = np.full_like(x, coef[0])
    for c in coef[1:]:
        y = y * x + c
    return y


def _p1evl(x: np.ndarray, coef: tuple[float, ...]) -> np.ndarray:
    y = x + coef[0]
    for c in coef[1:]:
        y = y * x + c
    return y


def erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function in float64 (Cephes), vectorised."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    ax = np.abs(x)
    small = ax < 1.0
    xs = x[small]
    z = xs * xs
    out[small] = 1.0 - xs * _polevl(z, _T) / _p1evl(z, _U)
    big = ~small
    xb, ab = x[big], ax[big]
    # exp(-x^2) with x^2 split as m^2 + (2m + f) f, m = x rounded to 1/128 (Cephes expx2):
    # exp of a rounded x^2 would lose ~x^2 eps of relative accuracy for large x
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        m = np.floor(128.0 * ab + 0.5) / 128.0
        f = ab - m
        e = np.exp(-m * m) * np.exp(-(2.0 * m + f) * f)
        ratio = np.where(ab < 8.0, _polevl(ab, _P) / _p1evl(ab, _Q),
                         _polevl(ab, _R) / _p1evl(ab, _S))
        y = np.where(np.isinf(ab), 0.0, e * ratio)
    out[big] = np.where(xb < 0.0, 2.0 - y, y)
    out[np.isnan(x)] = np.nan
    return out


class GeluSpec(KernelSpec):
    defaults = {"rows": 1024, "cols": 8192, "approximate": "none"}
    inputs = ("x",)
    static_params = ("approximate",)
    grad_inputs = ("x",)
    tolerances = {
        "float64": Tolerance(16),
        "float32": Tolerance(8),
        "float16": Tolerance(2),
        "bfloat16": Tolerance(2),
    }

    def check(self, params):
        for key in ("rows", "cols"):
            if params[key] < 1:
                raise ValueError(f"{key} must be at least 1")
        if params["approximate"] not in FORMS:
            raise ValueError(f"approximate must be one of {', '.join(FORMS)}, "
                             f"not {params['approximate']!r}")

    def make_inputs(self, params, rng):
        return {"x": 3.0 * rng.standard_normal((params["rows"], params["cols"]))}

    def reference(self, inputs, params):
        x = inputs["x"]
        if params["approximate"] == "tanh":
            u = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)
            # 0.5 (1 + tanh u) = 1 / (1 + exp(-2u)), without 1 + tanh's cancellation for u << 0
            # (where it rounds to 0 in float64 past u ~ -19); exp overflows to inf -> -0, the limit
            with np.errstate(over="ignore"):
                return (x / (1.0 + np.exp(-2.0 * u)),)
        return (0.5 * x * erfc(-x / math.sqrt(2.0)),)

    def reference_backward(self, inputs, params, grad_outputs):
        x = inputs["x"]
        (g,) = grad_outputs
        if params["approximate"] == "tanh":
            k0, k1 = math.sqrt(2.0 / math.pi), 0.044715
            u = k0 * (x + k1 * x ** 3)
            e = np.exp(-2.0 * np.abs(u))  # in (0, 1]: no overflow
            sech2 = 4.0 * e / (1.0 + e) ** 2
            one_plus_tanh = np.where(u >= 0.0, 2.0, 2.0 * e) / (1.0 + e)
            return (g * (0.5 * one_plus_tanh + 0.5 * x * sech2 * k0 * (1.0 + 3.0 * k1 * x * x)),)
        cdf = 0.5 * erfc(-x / math.sqrt(2.0))
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return (g * (cdf + x * pdf),)

    def backward_flops(self, params):
        # none: Phi (scale, erf, +1, *0.5), x phi (x^2, scale, exp, *1/sqrt(2 pi), *x), sum, *g
        # tanh: u (x^2, *k1, +1, *x, *k0), tanh, 0.5 (1 + t) (2), sech^2 (2),
        #       k0 (1 + 3 k1 x^2) (3), times 0.5 x (2), sum, *g
        per = 11.0 if params["approximate"] == "none" else 17.0
        return per * params["rows"] * params["cols"]

    def backward_bytes(self, params, itemsize):
        return 3.0 * params["rows"] * params["cols"] * itemsize  # read x and g, write d_x

    def flops(self, params):
        # transcendental functions count as one operation.
        # none: x/sqrt2, erf, +1, *x, *0.5;  tanh: x^3 (2), *c, +x, *k, tanh, +1, *x, *0.5
        per = 5.0 if params["approximate"] == "none" else 9.0
        return per * params["rows"] * params["cols"]

    def bytes(self, params, itemsize):
        return 2.0 * params["rows"] * params["cols"] * itemsize


SPEC = GeluSpec()
