"""Mamba's selective scan (Gu and Dao, 2023, Algorithm 2; the semantics of mamba_ssm's
`selective_scan_ref`), with the inputs named as there:

    u, delta, z [B, D, L]   A [D, N]   B, C [B, N, L]   D, delta_bias [D]

    dt     = softplus(delta + delta_bias)       (plain delta + delta_bias if not delta_softplus)
    x_t    = exp(dt_t * A) * x_{t-1} + dt_t * B_t * u_t        (x_0 = 0; state [B, D, N])
    y_t    = <C_t, x_t> + D * u_t
    out    = y * silu(z)   when `gate`, else y

`z` is always an input (a spec's inputs are fixed) and is ignored when `gate` is false, which
the byte count reflects. `delta_bias` is always applied (Mamba always passes dt_proj's bias).

Inputs follow Mamba's initialisation and a trained model's typical ranges: A = -exp(log(n) +
0.2 noise) for n = 1..N (S4D-real, perturbed), so A < 0 and the scan is stable; delta_bias is
softplus^-1 of dt drawn log-uniformly in [0.001, 0.1] (Mamba's dt_bias init) and delta is
N(0, 0.5^2), so dt ranges over decades and exp(dt * A) from ~1 - 1e-3 (a memory of ~1000 steps)
to ~0 (no memory). Without softplus, delta itself is drawn positive, log-uniform in
[0.001, 0.1], with a small positive delta_bias. u, B, C, z are standard normal. D is
0.1 (1 + N(0, 1)): with Mamba's D = 1 the skip term D*u would be ~5x the scan's contribution
<C_t, x_t> and would hide errors in the scan; at 0.1 the scan term is ~2x the skip term.

Error model: each step rounds x_t (an error of ~eps |x_t|), which then decays by exp(dt A) per
step, so a channel accumulates the errors of its last min(L, 1/(dt |A|)) steps; with no decay
at all the recurrence is a running sum, whose float32 error grows like 0.4 sqrt(L) eps. Add the
length-N dot product with C: the float32 bound is 0.5 sqrt(L) + sqrt(N) + 8 eps (28 eps at
L = 1024). Measured on every backend here: 0.2 eps (float64 state) to 1.6 eps (float32 state)
at L = 32 to 16384, and up to 9.4 eps when the decay is made ~1e-4 per step at L = 16384 (the
hard case in the tests). For comparison, log(1 + exp(x)) for softplus costs ~10x more (15 eps
at L = 1024: dt ~ 0.001 loses ~10 of its 24 bits; inside the bound, but measured); decays as
exp(A (cumsum_t - cumsum_s)) over one 1024-step chunk reach 33 eps, growing linearly with the
chunk; exp(-A cumsum) with a division (the log-space trick) overflows to inf/NaN for chunks
past ~32 steps. bf16 inputs computed in float32 and rounded once are held to 2 eps.
"""

import math

import numpy as np

from kernbench import KernelSpec, Tolerance


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow or cancellation."""
    return np.logaddexp(0.0, x)


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x), with sigmoid written through tanh so it never overflows."""
    return x * 0.5 * (1.0 + np.tanh(0.5 * x))


class SelectiveScanSpec(KernelSpec):
    defaults = {"batch": 2, "dim": 1536, "seqlen": 1024, "dstate": 16, "gate": True,
                "delta_softplus": True}
    inputs = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
    static_params = ("gate", "delta_softplus")

    def check(self, params):
        for key in ("batch", "dim", "seqlen", "dstate"):
            if params[key] < 1:
                raise ValueError(f"{key} must be at least 1")
        if params["dstate"] > 256:
            raise ValueError("dstate must be at most 256 (Mamba uses 16; the state of a block "
                             "of channels is held in registers)")

    def tolerance(self, params, dtype):
        if dtype in ("bfloat16", "float16"):
            return Tolerance(2.0)
        return Tolerance(0.5 * math.sqrt(params["seqlen"]) + math.sqrt(params["dstate"]) + 8.0)

    def make_inputs(self, params, rng):
        b, d, length, n = params["batch"], params["dim"], params["seqlen"], params["dstate"]
        a_log = np.log(np.arange(1, n + 1, dtype=np.float64))[None, :] \
            + 0.2 * rng.standard_normal((d, n))
        dt_init = np.exp(rng.uniform(math.log(1e-3), math.log(1e-1), d))
        if params["delta_softplus"]:
            delta = 0.5 * rng.standard_normal((b, d, length))
            delta_bias = dt_init + np.log(-np.expm1(-dt_init))  # softplus^-1(dt_init)
        else:
            delta = np.exp(rng.uniform(math.log(1e-3), math.log(1e-1), (b, d, length)))
            delta_bias = 0.01 * rng.random(d)
        return {
            "u": rng.standard_normal((b, d, length)),
            "delta": delta,
            "A": -np.exp(a_log),
            "B": rng.standard_normal((b, n, length)),
            "C": rng.standard_normal((b, n, length)),
            "D": 0.1 * (1.0 + rng.standard_normal(d)),
            "z": rng.standard_normal((b, d, length)),
            "delta_bias": delta_bias,
        }

    def reference(self, inputs, params):
        u, A, Bm, Cm = inputs["u"], inputs["A"], inputs["B"], inputs["C"]
        dt = inputs["delta"] + inputs["delta_bias"][:, None]
        if params["delta_softplus"]:
            dt = softplus(dt)
        x = np.zeros(u.shape[:2] + A.shape[1:])  # [B, D, N]
        y = np.empty_like(u)
        for t in range(u.shape[2]):
            x = np.exp(dt[:, :, t, None] * A) * x \
                + (dt[:, :, t] * u[:, :, t])[:, :, None] * Bm[:, None, :, t]
            y[:, :, t] = np.einsum("bdn,bn->bd", x, Cm[:, :, t])
        y += inputs["D"][:, None] * u
        if params["gate"]:
            y *= silu(inputs["z"])
        return (y,)

    def flops(self, params):
        # per state element and step: dt*A, exp, (dt*u)*B, a*x + b (2), C*x summed (2) = 7;
        # per channel and step: bias + softplus (3), dt*u, D*u + y (2), silu gate and product (4)
        b, d, length, n = params["batch"], params["dim"], params["seqlen"], params["dstate"]
        per_channel = 6 + (4 if params["gate"] else 0)
        return float(b * d * length * (7 * n + per_channel))

    def bytes(self, params, itemsize):
        b, d, length, n = params["batch"], params["dim"], params["seqlen"], params["dstate"]
        per_bdl = 3 + (1 if params["gate"] else 0)  # u, delta, out (+ z)
        return float(per_bdl * b * d * length + 2 * b * n * length + d * n + 2 * d) * itemsize


SPEC = SelectiveScanSpec()
