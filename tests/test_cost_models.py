"""The cost models of every kernel, pinned on one small shape: `flops`, `bytes` and, for the
differentiable kernels, `backward_flops` and `backward_bytes`. GFLOP/s, GB/s, the roofline
fraction and the `suspect` flag are quotients of these, so a miscounted model misreports every
case of its kernel and fails nothing else.

Each expected count is written out here from the operation it models, as a per-element tally
that follows the convention the spec's docstring states (a transcendental function or a
comparison is one flop, a multiply-add two), never by calling or copying the spec's formula.
The byte models are also checked against the arrays the spec's own input generator and
reference produce: forward reads every input once and writes every output once; backward
reads the cotangents and what it needs (inputs, saved outputs, float32 per-row statistics) and
writes every gradient once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from .conftest import ROOT

ITEMSIZES = (2, 4, 8)  # bfloat16/float16, float32, float64


def stat(itemsize: int) -> int:
    """Bytes of a saved per-row statistic (mean, rstd, log-sum-exp): float32, or float64 for
    float64 inputs, as the specs' docstrings state."""
    return max(itemsize, 4)


@dataclasses.dataclass(frozen=True)
class Cost:
    """One kernel on one small shape and what its cost models must give there. Byte counts are
    functions of the itemsize. `saved` names the inputs (or outputs) backward reads besides the
    cotangents, `stats` counts the per-row statistics it reads, `unread` the inputs neither
    pass reads."""

    id: str
    kernel: str
    params: dict
    flops: int
    bytes: Callable[[int], int]
    backward_flops: int | None = None
    backward_bytes: Callable[[int], int] | None = None
    saved: tuple[str, ...] = ()
    stats: int = 0
    unread: tuple[str, ...] = ()


# Shapes use distinct small sizes, so a term taken over the wrong dimension changes the count.
# softmax, gelu, swiglu, layer_norm, rms_norm, cross_entropy, focal_loss: 3 rows x 5 = 15 elements
E = 15

SCAN = {"batch": 2, "dim": 3, "seqlen": 5, "dstate": 4}
BDL = 2 * 3 * 5  # (batch, channel, step) triples: u, delta, z, out and every per-channel term
SCAN_SMALL = 2 * (2 * 4 * 5) + 3 * 4 + 2 * 3  # B and C [b, n, L], A [d, n], D and delta_bias [d]


def scan(gate: bool, softplus: bool) -> Cost:
    """Selective scan: 4 state elements per (batch, channel, step)."""
    n = SCAN["dstate"]
    # forward, per state element and step: dt*A, exp, (dt*u)*B, a*x + b (2), C*x summed (2)
    fwd_state = 1 + 1 + 1 + 2 + 2
    # per channel and step: + delta_bias (1), softplus (2, exp and log1p: the forward's tally
    # "bias + softplus (3)"), dt*u (1), D*u + y (2), silu(z) as z / (1 + exp(-z)) (3) times y (1)
    fwd_chan = 1 + (2 if softplus else 0) + 1 + 2 + ((3 + 1) if gate else 0)
    # backward, per state element and step (the spec's tally): the forward recomputed (dt*A,
    # exp, dt u*B, a*x + b: 5; <C, x> for y, needed by dz only with the gate: 2), lam = C dy +
    # carry (2), carry = a lam (1), q = lam a x_prev (2), <q, A> (2), q dt into dA (2),
    # <lam, B> (2), lam dt u into dB (2), x dy into dC (2)
    bwd_state = 5 + (2 if gate else 0) + 2 + 1 + 2 + 2 + 2 + 2 + 2 + 2
    # per channel and step: dt (1), softplus (3) and its derivative sigmoid (3), dt*u (1),
    # dy = g silu(z) and dz (10, with the gate), du = dy D + <lam, B> dt (3), d dt (2),
    # dD (2), d delta_bias (1)
    bwd_chan = 1 + ((3 + 3) if softplus else 0) + 1 + (10 if gate else 0) + 3 + 2 + 2 + 1
    # the [batch, dim, seqlen] inputs read: u, delta (, z); out and g have that shape too
    per_bdl = 2 + (1 if gate else 0)
    return Cost(
        id=f"selective_scan-{'gate' if gate else 'nogate'}-"
           f"{'softplus' if softplus else 'nosoftplus'}",
        kernel="selective_scan",
        params={**SCAN, "gate": gate, "delta_softplus": softplus},
        flops=BDL * (fwd_state * n + fwd_chan),
        bytes=lambda i: ((per_bdl + 1) * BDL + SCAN_SMALL) * i,
        backward_flops=BDL * (bwd_state * n + bwd_chan),
        # read u, delta, g (, z) and the small tensors; write du, d delta, dz (zeros without
        # the gate: still a gradient written) and the small tensors' gradients
        backward_bytes=lambda i: ((per_bdl + 1) * BDL + SCAN_SMALL + 3 * BDL + SCAN_SMALL) * i,
        saved=("u", "delta", "A", "B", "C", "D", "delta_bias") + (("z",) if gate else ()),
        unread=() if gate else ("z",),
    )


CASES = [
    Cost("softmax", "softmax", {"rows": 3, "cols": 5},
         # per element: max compare, subtract the max, exp, row sum, divide
         flops=(1 + 1 + 1 + 1 + 1) * E,
         bytes=lambda i: (E + E) * i,  # read x, write out
         # per element: g*y, row sum of it, subtract from g, times y
         backward_flops=(1 + 1 + 1 + 1) * E,
         backward_bytes=lambda i: (E + E + E) * i,  # read y and g, write dx
         saved=("out",)),
    Cost("gelu-none", "gelu", {"rows": 3, "cols": 5, "approximate": "none"},
         # per element: x / sqrt(2), erf, +1, *x, *0.5
         flops=(1 + 1 + 1 + 1 + 1) * E,
         bytes=lambda i: (E + E) * i,
         # Phi: x / sqrt(2), erf, +1, *0.5 (4); phi: x^2, *(-1/2), exp, /sqrt(2 pi) (4);
         # x * phi (1); Phi + x phi (1); times g (1)
         backward_flops=(4 + 4 + 1 + 1 + 1) * E,
         backward_bytes=lambda i: (E + E + E) * i,  # read x and g, write dx
         saved=("x",)),
    Cost("gelu-tanh", "gelu", {"rows": 3, "cols": 5, "approximate": "tanh"},
         # per element: x^3 (2), *0.044715, +x, *sqrt(2/pi), tanh, +1, *x, *0.5
         flops=(2 + 1 + 1 + 1 + 1 + 1 + 1 + 1) * E,
         bytes=lambda i: (E + E) * i,
         # u = k0 x (1 + k1 x^2): x^2, *k1, +1, *x, *k0 (5); tanh (1); 0.5 (1 + t) (2);
         # sech^2 = 1 - t^2 (2); k0 (1 + 3 k1 x^2) (3); times x and sech^2, the 0.5 folded into
         # that constant (2); sum (1); times g (1)
         backward_flops=(5 + 1 + 2 + 2 + 3 + 2 + 1 + 1) * E,
         backward_bytes=lambda i: (E + E + E) * i,
         saved=("x",)),
    Cost("swiglu", "swiglu", {"rows": 3, "hidden": 5},
         # per element: exp(-a) (negation folded), +1, a / that, times b
         flops=(1 + 1 + 1 + 1) * E,
         bytes=lambda i: (E + E + E) * i,  # read a and b, write out
         # s = sigmoid(a): exp, +1, divide (3); 1 + a (1 - s) (3); d_a = that * s * b * g (3);
         # d_b = a * s * g (2)
         backward_flops=(3 + 3 + 3 + 2) * E,
         backward_bytes=lambda i: (3 * E + 2 * E) * i,  # read a, b, g; write d_a, d_b
         saved=("a", "b")),
    Cost("rope", "rope", {"batch": 1, "heads": 2, "seq": 3, "head_dim": 4},
         # per output element (1*2*3*4 = 24): two multiplies and an add or subtract
         flops=(2 + 1) * 24,
         # read q (24) and the cos and sin tables ([seq, head_dim/2] = 6 each), write out (24)
         bytes=lambda i: (24 + 2 * 6 + 24) * i,
         backward_flops=(2 + 1) * 24,  # the same rotation, by -angle
         backward_bytes=lambda i: (24 + 2 * 6 + 24) * i,  # read g and the tables, write d_q
         saved=("cos", "sin")),
    Cost("matmul", "matmul", {"m": 2, "n": 3, "k": 5},
         # 2 x 3 outputs, each a length-5 dot product: 5 multiply-adds of 2 flops
         flops=2 * 3 * 5 * 2,
         bytes=lambda i: (2 * 5 + 5 * 3 + 2 * 3) * i,  # read A, B; write C
         # dA = G B^T and dB = A^T G: two products the forward's size
         backward_flops=2 * (2 * 3 * 5 * 2),
         # read A, B, G; write dA, dB
         backward_bytes=lambda i: (2 * 5 + 5 * 3 + 2 * 3 + 2 * 5 + 5 * 3) * i,
         saved=("a", "b")),
    Cost("attention-full", "attention",
         {"batch": 2, "heads": 3, "seq": 5, "head_dim": 4, "causal": False},
         # per (batch, head): q k^T and P v, each 5 x 5 outputs of length-4 dot products
         # (2 flops a term); softmax is O(S^2) and not counted (the spec's convention)
         flops=2 * 3 * (2 * (5 * 5 * 4 * 2)),
         bytes=lambda i: 4 * (2 * 3 * 5 * 4) * i,  # read q, k, v; write out
         # five such products: q k^T recomputed, dO v^T, P^T dO, dS k, dS^T q
         backward_flops=2 * 3 * (5 * (5 * 5 * 4 * 2)),
         # read q, k, v, out, dO and one statistic per query row (2*3*5); write dq, dk, dv
         backward_bytes=lambda i: (5 + 3) * (2 * 3 * 5 * 4) * i + 2 * 3 * 5 * stat(i),
         saved=("q", "k", "v", "out"), stats=2 * 3 * 5),
    Cost("attention-causal", "attention",
         {"batch": 2, "heads": 3, "seq": 5, "head_dim": 4, "causal": True},
         # the causal mask halves both products (the FlashAttention papers' convention)
         flops=2 * 3 * (2 * (5 * 5 * 4 * 2)) // 2,
         bytes=lambda i: 4 * (2 * 3 * 5 * 4) * i,
         backward_flops=2 * 3 * (5 * (5 * 5 * 4 * 2)) // 2,
         backward_bytes=lambda i: (5 + 3) * (2 * 3 * 5 * 4) * i + 2 * 3 * 5 * stat(i),
         saved=("q", "k", "v", "out"), stats=2 * 3 * 5),
    Cost("layer_norm", "layer_norm", {"rows": 3, "hidden": 5},
         # per element: mean (add); variance: centre, square, add (3); output: centre, *rstd,
         # *weight, +bias (4)
         flops=(1 + 3 + 4) * E,
         bytes=lambda i: (E + 5 + 5 + E) * i,  # read x, weight, bias; write out
         # xhat = (x - mean) rstd (2); dxhat = g weight (1); row sums of dxhat (1) and of
         # dxhat xhat (2); dx = rstd (dxhat - mean - xhat mean) (4); dweight: g xhat, column
         # sum (2); dbias: column sum (1)
         backward_flops=(2 + 1 + 1 + 2 + 4 + 2 + 1) * E,
         # read x, g, weight, mean and rstd (2 per row); write dx, dweight, dbias
         backward_bytes=lambda i: (E + E + 5 + E + 5 + 5) * i + 2 * 3 * stat(i),
         saved=("x", "weight"), stats=2 * 3),
    Cost("rms_norm", "rms_norm", {"rows": 3, "hidden": 5},
         # per element: x^2 and its row sum (2); *rstd, *weight (2)
         flops=(2 + 2) * E,
         bytes=lambda i: (E + 5 + E) * i,  # read x, weight; write out
         # xhat = x rstd (1); dxhat = g weight (1); row sum of dxhat xhat (2);
         # dx = rstd (dxhat - xhat mean) (3); dweight: g xhat, column sum (2)
         backward_flops=(1 + 1 + 2 + 3 + 2) * E,
         # read x, g, weight and rstd (1 per row); write dx, dweight
         backward_bytes=lambda i: (E + E + 5 + E + 5) * i + 3 * stat(i),
         saved=("x", "weight"), stats=3),
    Cost("cross_entropy", "cross_entropy", {"n": 3, "vocab": 5},
         # per logit: max compare, subtract the max, exp, sum
         flops=(1 + 1 + 1 + 1) * E,
         # read logits, the int64 targets (8 bytes whatever the dtype); write the scalar loss
         bytes=lambda i: (E + 1) * i + 3 * 8,
         # per logit: subtract lse, exp, subtract the smoothed one-hot q, times g / N
         backward_flops=(1 + 1 + 1 + 1) * E,
         # read logits, targets, lse (1 per row) and the scalar g; write d logits
         backward_bytes=lambda i: (E + 1 + E) * i + 3 * 8 + 3 * stat(i),
         saved=("logits", "target"), stats=3),
    Cost("cross_entropy-smoothed", "cross_entropy", {"n": 3, "vocab": 5,
                                                     "label_smoothing": 0.1},
         # + the sum of the logits for the uniform term of the smoothed target
         flops=(1 + 1 + 1 + 1 + 1) * E,
         bytes=lambda i: (E + 1) * i + 3 * 8,
         backward_flops=(1 + 1 + 1 + 1) * E,
         backward_bytes=lambda i: (E + 1 + E) * i + 3 * 8 + 3 * stat(i),
         saved=("logits", "target"), stats=3),
    Cost("focal_loss", "focal_loss", {"rows": 3, "classes": 5},
         # per element: x_t (sign flip), |x_t|, exp(-|x_t|), log1p, max(-x_t, 0), add: the
         # stable softplus (6); 1 - p_t from the same exp: add, divide (2); the power (1);
         # alpha_t select (1); alpha_t * (1 - p_t)^gamma * ce (2); the mean's sum (1)
         flops=(6 + 2 + 1 + 1 + 2 + 1) * E,
         bytes=lambda i: (E + E + 1) * i,  # read logits and (float) targets; write the loss
         # the forward's convention: z (sign flip), |z|, exp, log1p, max, add (6); s = 1 - p_t:
         # add, divide, and p_t = 1 - s (3); s^gamma (1); gamma p_t ce + s (3); the signed
         # alpha_t with g / N folded into its two values (1 select); s^gamma times the bracket,
         # times that (2)
         backward_flops=(6 + 3 + 1 + 3 + 1 + 2) * E,
         backward_bytes=lambda i: (E + E + 1 + E) * i,  # read logits, targets, g; write d logits
         saved=("logits", "targets")),
    Cost("adamw_step", "adamw_step", {"numel": 7},
         # per element: decay param * (1 - lr wd) (1); exp_avg: b1 m + (1 - b1) g (3);
         # exp_avg_sq: g^2, *(1 - b2), b2 v, add (4); v / bc2 and its sqrt (2); + eps (1);
         # m over that (1); times lr / bc1 (1); subtract from param (1)
         flops=(1 + 3 + 4 + 2 + 1 + 1 + 1 + 1) * 7,
         # read param, grad, exp_avg, exp_avg_sq; write param, exp_avg, exp_avg_sq
         bytes=lambda i: (4 + 3) * 7 * i),
    Cost("pairwise_distance", "pairwise_distance", {"n": 2, "m": 3, "d": 5},
         # the GEMM form (the spec's stated convention): x.y for 2 x 3 pairs, 5 multiply-adds
         # each; then per output |x|^2 + |y|^2 - 2 x.y (3); the two norm vectors not counted
         flops=2 * 3 * 5 * 2 + 3 * (2 * 3),
         bytes=lambda i: (2 * 5 + 3 * 5 + 2 * 3) * i),  # read x, y; write the 2 x 3 distances
    scan(gate=True, softplus=True),
    scan(gate=False, softplus=True),
    scan(gate=True, softplus=False),
    scan(gate=False, softplus=False),
]


def pins(model: str) -> list:
    """(case, expected) for the cases that pin `model`."""
    return [(c, getattr(c, model)) for c in CASES if getattr(c, model) is not None]


def resolved(kernels, case: Cost):
    spec = kernels[case.kernel].spec
    return spec, spec.resolve(case.params)


def test_every_kernel_is_pinned(kernels):
    """Every kernel folder has a case here, and backward models are pinned exactly for the
    differentiable kernels (a new kernel, or a new backward, must add its counts)."""
    folders = {p.parent.name for p in (ROOT / "kernels").glob("*/spec.py")}
    assert {c.kernel for c in CASES} == folders
    for case in CASES:
        spec = kernels[case.kernel].spec
        assert (case.backward_flops is not None) == spec.differentiable, case.id
        assert (case.backward_bytes is not None) == spec.differentiable, case.id


@pytest.mark.parametrize("model", ["flops", "backward_flops"])
def test_flop_models(kernels, model):
    for case, expected in pins(model):
        spec, params = resolved(kernels, case)
        assert getattr(spec, model)(params) == expected, case.id


@pytest.mark.parametrize("itemsize", ITEMSIZES, ids=lambda i: f"{i}B")
@pytest.mark.parametrize("model", ["bytes", "backward_bytes"])
def test_byte_models(kernels, model, itemsize):
    for case, expected in pins(model):
        spec, params = resolved(kernels, case)
        assert getattr(spec, model)(params, itemsize) == expected(itemsize), case.id


# -- the byte models against the arrays the spec itself makes -----------------------------------
def arrays(spec, params):
    """The spec's inputs on the case's shape and its reference outputs, by name."""
    inputs = spec.make_inputs(params, np.random.default_rng(0))
    return inputs, dict(zip(spec.outputs, spec.reference(inputs, params)))


def stored(spec, name: str, a: np.ndarray, itemsize: int) -> int:
    """Bytes of one array in a case of `itemsize`: integer inputs keep their own width."""
    return a.size * (a.itemsize if name in spec.integer_inputs else itemsize)


@pytest.mark.parametrize("itemsize", ITEMSIZES, ids=lambda i: f"{i}B")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_forward_bytes_read_each_input_and_write_each_output_once(kernels, case, itemsize):
    spec, params = resolved(kernels, case)
    inputs, outputs = arrays(spec, params)
    read = sum(stored(spec, k, a, itemsize) for k, a in inputs.items() if k not in case.unread)
    written = sum(o.size for o in outputs.values()) * itemsize
    assert spec.bytes(params, itemsize) == read + written


@pytest.mark.parametrize("itemsize", ITEMSIZES, ids=lambda i: f"{i}B")
@pytest.mark.parametrize("case", [c for c in CASES if c.backward_bytes], ids=lambda c: c.id)
def test_backward_bytes_read_what_backward_needs_and_write_each_gradient_once(
        kernels, case, itemsize):
    """Read: one cotangent per output, the saved tensors and the per-row statistics; written:
    one gradient per grad input, of its input's size."""
    spec, params = resolved(kernels, case)
    inputs, outputs = arrays(spec, params)
    cotangents = sum(o.size for o in outputs.values()) * itemsize
    saved = sum(stored(spec, k, inputs[k] if k in inputs else outputs[k], itemsize)
                for k in case.saved)
    read = cotangents + saved + case.stats * stat(itemsize)
    written = sum(inputs[k].size for k in spec.grad_inputs) * itemsize
    assert spec.backward_bytes(params, itemsize) == read + written
