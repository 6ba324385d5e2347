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

Gradients: all eight inputs (z's is zero without the gate). reference_backward runs the adjoint
recurrence lam_t = C_t dy_t + exp(dt_{t+1} A) lam_{t+1} backwards in time in float64.
Error model: the adjoint is the forward's recurrence run backwards, so du, d delta and dz get
the forward's bound. The gradients of the shared inputs are sums: dA, dD and d delta_bias over
batch and time (B L terms), dB and dC over the D channels. A float32 running sum of n terms of
random sign is off by ~0.2 sqrt(n) eps of its result, so their bound adds 0.5 sqrt(n)
(dA at B = 2, L = 1024: 28 + 23 = 51 eps). bf16: computed in float32, rounded once: 2 eps.
Measured at the cpu.toml shapes, float32, worst gradient per backend (bound 48-57 eps):
numpy 7.0 eps (dB; its einsum sums the 2048 channels in float32), jax 7.2 (dA), jax assoc 7.0
(dC), torch_compile chunked 7.0 (d delta_bias), torch chunked 3.6 (dC), numba 0.2 (float64
inside): a margin of 7x or more. bf16: 0.21-0.24 eps on every backend (bound 2). The torch
default loop is too slow to differentiate at those shapes (autograd gives each step's slice of
its [B, D, L, N] decay tensor a full-size gradient: quadratic in L); it measured 12.5 eps worst
on the hard inputs at L = 4096 (bound 44-76).
The hard case (dt ~ 1e-4, L = 16384): u and z stay within 1.8 eps, but d delta, dA, dB and dC
reach 9-20 eps on the sequential float32 backends (torch chunked, jax, numpy; bound 76-140),
and jax's associative-scan variant fails there (d delta 80 of 76, dA 194 of 140 eps; its
forward is 7 eps there against 1.4 for the sequential scan): its decay products are formed in a
tree of float32 multiplications, which autodiff runs again backwards.
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
    grad_inputs = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
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

    def grad_tolerance(self, params, dtype, name):
        tol = self.tolerance(params, dtype)
        if dtype in ("bfloat16", "float16"):
            return tol  # computed in float32, rounded once
        # gradients of the inputs shared along an axis are sums along it: A, D and delta_bias
        # over batch and time, B and C over the channels
        b, d, length = params["batch"], params["dim"], params["seqlen"]
        count = {"A": b * length, "D": b * length, "delta_bias": b * length, "B": d, "C": d}
        if name not in count:
            return tol
        return Tolerance(tol.rel_l2_eps + 0.5 * math.sqrt(count[name]))

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

    def reference_backward(self, inputs, params, grad_outputs):
        # The adjoint of the scan runs backwards in time: lam_t = dLoss/dx_t (through every
        # later step) obeys lam_t = C_t dy_t + exp(dt_{t+1} A) lam_{t+1}, and each step's
        # x_t = a_t x_{t-1} + dt_t u_t B_t, a_t = exp(dt_t A), then hands out
        #   d a_t = lam_t x_{t-1} -> d dt_t += <lam_t a_t x_{t-1}, A>, dA += lam_t a_t x_{t-1} dt_t
        #   d(dt_t u_t) = <lam_t, B_t> -> d dt_t += u_t <lam_t, B_t>, du_t += dt_t <lam_t, B_t>
        #   dB_t = sum_d lam_t dt_t u_t,   dC_t = sum_d x_t dy_t.
        # The reverse sweep needs x_{t-1}: states are kept at every K-th step (K ~ sqrt(L)) and
        # each chunk's states are recomputed from its start, so memory is O(B D N sqrt(L)), not
        # the O(B D L N) of storing every state.
        u, A, Bm, Cm, Dv, z = (inputs[k] for k in ("u", "A", "B", "C", "D", "z"))
        (g,) = grad_outputs
        raw = inputs["delta"] + inputs["delta_bias"][:, None]
        dt = softplus(raw) if params["delta_softplus"] else raw
        dtu = dt * u
        length = u.shape[2]
        chunk = max(1, math.isqrt(length))

        def step(x, t):
            a = np.exp(dt[:, :, t, None] * A)
            return a, a * x + dtu[:, :, t, None] * Bm[:, None, :, t]

        starts, x = [], np.zeros(u.shape[:2] + A.shape[1:])
        y = np.empty_like(u)
        for t in range(length):
            if t % chunk == 0:
                starts.append(x)
            x = step(x, t)[1]
            y[:, :, t] = np.einsum("bdn,bn->bd", x, Cm[:, :, t])
        y += Dv[:, None] * u
        if params["gate"]:
            sig = 0.5 * (1.0 + np.tanh(0.5 * z))
            dy = g * z * sig
            dz = g * y * sig * (1.0 + z * (1.0 - sig))  # silu'(z) = sig (1 + z (1 - sig))
        else:
            dy, dz = g, np.zeros_like(z)
        du = dy * Dv[:, None]
        d_skip = np.sum(dy * u, axis=(0, 2))
        ddt = np.empty_like(u)
        dA, dB, dC = np.zeros_like(A), np.empty_like(Bm), np.empty_like(Cm)
        carry = np.zeros_like(x)  # exp(dt_{t+1} A) lam_{t+1}
        for c in reversed(range(len(starts))):
            t0, t1 = c * chunk, min((c + 1) * chunk, length)
            decays, states = [], [starts[c]]
            for t in range(t0, t1):
                a, x = step(states[-1], t)
                decays.append(a)
                states.append(x)
            for t in reversed(range(t0, t1)):
                a, x_t, x_prev = decays[t - t0], states[t - t0 + 1], states[t - t0]
                lam = carry + dy[:, :, t, None] * Cm[:, None, :, t]
                q = lam * a * x_prev
                lam_b = np.einsum("bdn,bn->bd", lam, Bm[:, :, t])
                ddt[:, :, t] = np.einsum("bdn,dn->bd", q, A) + lam_b * u[:, :, t]
                du[:, :, t] += lam_b * dt[:, :, t]
                dA += np.einsum("bdn,bd->dn", q, dt[:, :, t])
                dB[:, :, t] = np.einsum("bdn,bd->bn", lam, dtu[:, :, t])
                dC[:, :, t] = np.einsum("bdn,bd->bn", x_t, dy[:, :, t])
                carry = a * lam
        # softplus'(raw) = sigmoid(raw) = 1 - exp(-dt), without the cancellation of
        # 0.5 (1 + tanh(raw / 2)) at raw ~ -7 (dt ~ 1e-3)
        d_delta = -np.expm1(-dt) * ddt if params["delta_softplus"] else ddt
        return du, d_delta, dA, dB, dC, d_skip, dz, d_delta.sum(axis=(0, 2))

    def backward_flops(self, params):
        # per state element and step: the forward recomputed (dt*A, exp, dt u*B, a*x + b: 5;
        # <C, x> for the gated output: 2), the adjoint lam = C dy + carry (2), carry = a lam
        # (1), q = lam a x_prev (2), <q, A> (2), q dt into dA (2), <lam, B> (2), lam dt u into
        # dB (2), x dy into dC (2): 22 with the gate, 20 without.
        # per channel and step: dt (1, softplus 3 and its sigmoid 3), dt*u, dy = g silu(z) and
        # dz (10 with the gate), du (3), d dt (2), dD (2), d delta_bias (1)
        b, d, length, n = params["batch"], params["dim"], params["seqlen"], params["dstate"]
        per_state = 22 if params["gate"] else 20
        per_channel = 10 + (6 if params["delta_softplus"] else 0) + (10 if params["gate"] else 0)
        return float(b * d * length * (per_state * n + per_channel))

    def backward_bytes(self, params, itemsize):
        # the inputs read again (z only with the gate), the cotangent read, every gradient
        # written (dz too: zeros without the gate)
        b, d, length, n = params["batch"], params["dim"], params["seqlen"], params["dstate"]
        small = 2 * b * n * length + d * n + 2 * d
        read = (3 + (1 if params["gate"] else 0)) * b * d * length + small  # u, delta, g (, z)
        written = 3 * b * d * length + small
        return float(read + written) * itemsize

    def flops(self, params):
        # per state element and step: dt*A, exp, (dt*u)*B, a*x + b (2), C*x summed (2) = 7;
        # per channel and step: + delta_bias (1), softplus (2, with delta_softplus), dt*u,
        # D*u + y (2), silu gate and product (4, with the gate)
        b, d, length, n = params["batch"], params["dim"], params["seqlen"], params["dstate"]
        per_channel = (4 + (2 if params["delta_softplus"] else 0)
                       + (4 if params["gate"] else 0))
        return float(b * d * length * (7 * n + per_channel))

    def bytes(self, params, itemsize):
        b, d, length, n = params["batch"], params["dim"], params["seqlen"], params["dstate"]
        per_bdl = 3 + (1 if params["gate"] else 0)  # u, delta, out (+ z)
        return float(per_bdl * b * d * length + 2 * b * n * length + d * n + 2 * d) * itemsize


SPEC = SelectiveScanSpec()
