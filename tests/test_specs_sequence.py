"""Specs of the sequence kernels (attention, selective_scan): each float64 reference against an
independent implementation (torch's scaled_dot_product_attention in float64, a per-row loop
with SciPy's softmax; the materialised matrix form of the scan and a scalar math-library loop),
on fresh inputs and on the hard inputs the specs name (huge logits; a 16k-step scan whose state
barely decays); each tolerance passes correct results and fails slightly wrong
implementations; the scan's non-default flags run on every backend."""

import math

import numpy as np
import pytest
import scipy.special
import torch
import torch.nn.functional as F

from kernbench.accuracy import compare
from kernbench.case import Case
from kernbench.discovery import import_backend
from kernbench.dtypes import round_to
from kernbench.errors import UsageError

from .conftest import FAST

RNG = np.random.default_rng(11)
SMALL = {"attention": {"batch": 2, "heads": 3, "seq": 37, "head_dim": 24, "causal": True},
         "selective_scan": {"batch": 2, "dim": 5, "seqlen": 40, "dstate": 6}}


def error(spec, params, out, ref, dtype="float32"):
    bound = spec.tolerance(params, dtype).bound(dtype)
    return compare("out", out, ref, dtype, bound)


def passes(spec, params, out, ref, dtype="float32") -> bool:
    return error(spec, params, out, ref, dtype).passed


def t64(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


# -- common -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("flag", [True, False])
def test_inputs_seeded_float64_and_costs_positive(kernels, name, flag):
    spec = kernels[name].spec
    flag_key = "causal" if name == "attention" else "gate"
    params = spec.resolve({**SMALL[name], flag_key: flag})
    a = spec.make_inputs(params, np.random.default_rng(1))
    b = spec.make_inputs(params, np.random.default_rng(1))
    c = spec.make_inputs(params, np.random.default_rng(2))
    assert tuple(a) == spec.inputs
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].dtype == np.float64 and np.isfinite(a[k]).all()
        assert not np.array_equal(a[k], c[k])
    (ref,) = spec.reference(a, params)
    assert np.isfinite(ref).all() and np.abs(ref).max() > 0
    assert spec.flops(params) > 0
    assert spec.bytes(params, 4) == 2 * spec.bytes(params, 2)
    # minimum traffic: every input the kernel needs read once, the output written once
    n_in = sum(v.size for k, v in a.items() if not (k == "z" and not flag))
    assert spec.bytes(params, 4) == pytest.approx(4 * (n_in + ref.size))


@pytest.mark.parametrize("name, bad", [
    ("attention", {"seq": 0}), ("attention", {"head_dim": 0}), ("attention", {"head_dim": 512}),
    ("attention", {"batch": -1}), ("attention", {"causal": 1}),
    ("selective_scan", {"dstate": 0}), ("selective_scan", {"dim": -3}),
    ("selective_scan", {"seqlen": 0}), ("selective_scan", {"dstate": 1024}),
    ("selective_scan", {"gate": "yes"}),
])
def test_check_rejects_nonsense(kernels, name, bad):
    key = next(iter(bad))
    with pytest.raises(UsageError, match=key):
        kernels[name].spec.resolve(bad, "t.toml")


# -- attention ----------------------------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
def test_attention_reference_matches_torch_sdpa(kernels, causal):
    spec = kernels["attention"].spec
    params = spec.resolve({**SMALL["attention"], "causal": causal})
    x = spec.make_inputs(params, RNG)
    (ref,) = spec.reference(x, params)
    sdpa = F.scaled_dot_product_attention(t64(x["q"]), t64(x["k"]), t64(x["v"]),
                                          is_causal=causal).numpy()
    np.testing.assert_allclose(ref, sdpa, rtol=1e-11, atol=1e-13)


def test_attention_reference_matches_a_row_loop(kernels):
    spec = kernels["attention"].spec
    params = spec.resolve({"batch": 1, "heads": 2, "seq": 9, "head_dim": 5, "causal": True})
    x = spec.make_inputs(params, RNG)
    (ref,) = spec.reference(x, params)
    for h in range(2):
        for i in range(9):  # query i sees keys 0..i
            logits = [float(np.dot(x["q"][0, h, i], x["k"][0, h, j])) / math.sqrt(5)
                      for j in range(i + 1)]
            weights = scipy.special.softmax(logits)
            np.testing.assert_allclose(ref[0, h, i], weights @ x["v"][0, h, : i + 1],
                                       rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_reference_is_stable_for_huge_logits(kernels, causal):
    """Logits in the hundreds overflow exp() unless the row max is subtracted."""
    spec = kernels["attention"].spec
    params = spec.resolve({**SMALL["attention"], "causal": causal})
    x = spec.make_inputs(params, RNG)
    x["q"] = x["q"] * 100.0
    (ref,) = spec.reference(x, params)
    assert np.isfinite(ref).all()
    sdpa = F.scaled_dot_product_attention(t64(x["q"]), t64(x["k"]), t64(x["v"]),
                                          is_causal=causal).numpy()
    np.testing.assert_allclose(ref, sdpa, rtol=1e-9, atol=1e-12)
    if causal:  # the first query sees only the first key
        np.testing.assert_array_equal(ref[:, :, 0], x["v"][:, :, 0])


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shape,logit_scale", [
    ({"batch": 2, "heads": 3, "seq": 37, "head_dim": 24}, 1.0),
    ({"batch": 1, "heads": 2, "seq": 16, "head_dim": 8}, 100.0),  # logits in the hundreds
    ({"batch": 1, "heads": 1, "seq": 1100, "head_dim": 16}, 1.0),  # long rows
])
def test_attention_reference_gradient_matches_torch_autograd(kernels, causal, shape, logit_scale):
    spec = kernels["attention"].spec
    params = spec.resolve({**shape, "causal": causal})
    rng = np.random.default_rng(1234)  # fresh inputs, not the forward tests'
    x = spec.make_inputs(params, rng)
    x["q"] = x["q"] * logit_scale
    (ref,) = spec.reference(x, params)
    cot = spec.make_grad_outputs(params, rng, (ref,))
    grads = spec.reference_backward(x, params, cot)
    q, k, v = (t64(x[n]).requires_grad_() for n in ("q", "k", "v"))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    out.backward(torch.from_numpy(cot[0]))
    # saturated rows make dq and dk a cancellation (P (dP - rowsum(P dP)) with P one-hot):
    # both sides are then float64 round-off of the scale |dO| |v| |k|, hence the atol
    atol = 1e-13 * np.abs(cot[0]).max() * np.abs(x["v"]).max() * max(
        np.abs(x["q"]).max(), np.abs(x["k"]).max())
    for name, ours, theirs in zip(("q", "k", "v"), grads, (q.grad, k.grad, v.grad)):
        theirs = theirs.numpy()
        assert np.isfinite(ours).all(), name
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=atol, err_msg=name)


def _attention(q, k, v, causal, *, scale_factor=1.0, weights_dtype=None, mask_shift=0):
    """float64 attention with one knob turned: the scale, rounding of P, the mask's diagonal."""
    s_len = q.shape[2]
    scores = q @ k.swapaxes(-1, -2) * (scale_factor / math.sqrt(q.shape[-1]))
    if causal:
        scores = np.where(np.triu(np.ones((s_len, s_len), bool), 1 + mask_shift), -np.inf, scores)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    denom = weights.sum(-1, keepdims=True)
    if weights_dtype:
        weights = round_to(weights, weights_dtype)
    return weights @ v / denom


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_attention_tolerance_separates_right_from_wrong(kernels, dtype):
    spec = kernels["attention"].spec
    params = spec.resolve({"batch": 1, "heads": 4, "seq": 256, "head_dim": 64, "causal": True})
    x = {k: round_to(v, dtype) for k, v in spec.make_inputs(params, RNG).items()}
    (ref,) = spec.reference(x, params)
    q, k, v = x["q"], x["k"], x["v"]

    def ok(out):
        return passes(spec, params, round_to(out, dtype), ref, dtype)

    assert ok(ref)
    # flash kernels round the weights to the input dtype before P.V: fine for bf16
    assert ok(_attention(q, k, v, True, weights_dtype=dtype))
    assert not ok(_attention(q, k, v, True, mask_shift=1))  # each query sees one key too many
    assert not ok(_attention(q, k, v, False))  # the mask forgotten
    if dtype == "float32":
        assert not ok(_attention(q, k, v, True, weights_dtype="float16"))  # P in half
        assert not ok(_attention(q, k, v, True, scale_factor=1.001))
    else:
        assert not ok(_attention(q, k, v, True, scale_factor=1.05))


# -- selective_scan -----------------------------------------------------------------------------
def _matrix_form(x: dict, params: dict) -> np.ndarray:
    """The scan written as a materialised [L, L] operator per (batch, channel, state):
    x_t = sum_{s <= t} exp(A sum_{s < r <= t} dt_r) dt_s B_s u_s, with torch's softplus and
    SciPy's expit: an independent float64 formulation (O(L^2), small L only)."""
    dt = x["delta"] + x["delta_bias"][:, None]
    if params["delta_softplus"]:
        dt = F.softplus(t64(dt)).numpy()
    length = dt.shape[-1]
    cum = np.cumsum(dt, axis=-1)
    seg = cum[..., :, None] - cum[..., None, :]                     # [B, D, t, s]
    causal = np.tril(np.ones((length, length), dtype=bool))
    decay = np.exp(np.where(causal, seg, 0.0)[:, :, None] * x["A"][None, :, :, None, None])
    decay *= causal                                                  # [B, D, N, t, s]
    drive = (dt * x["u"])[:, :, None, :] * x["B"][:, None, :, :]    # [B, D, N, s]
    states = np.einsum("bdnts,bdns->bdnt", decay, drive)
    y = np.einsum("bdnt,bnt->bdt", states, x["C"]) + x["D"][:, None] * x["u"]
    if params["gate"]:
        y = y * x["z"] * scipy.special.expit(x["z"])
    return y


@pytest.mark.parametrize("gate, softplus", [(True, True), (False, True), (True, False)])
def test_selective_scan_reference_matches_matrix_form(kernels, gate, softplus):
    spec = kernels["selective_scan"].spec
    params = spec.resolve({**SMALL["selective_scan"], "gate": gate, "delta_softplus": softplus})
    x = spec.make_inputs(params, RNG)
    (ref,) = spec.reference(x, params)
    np.testing.assert_allclose(ref, _matrix_form(x, params), rtol=1e-10, atol=1e-12)


def test_selective_scan_without_memory_is_the_closed_form(kernels):
    """With A very negative, exp(dt A) = 0: x_t = dt_t u_t B_t and y_t is a product."""
    spec = kernels["selective_scan"].spec
    params = spec.resolve(SMALL["selective_scan"])
    x = spec.make_inputs(params, RNG)
    x["A"] = np.full_like(x["A"], -1e6)
    (ref,) = spec.reference(x, params)
    dt = np.log1p(np.exp(x["delta"] + x["delta_bias"][:, None]))
    bc = np.einsum("bnl,bnl->bl", x["B"], x["C"])[:, None, :]
    silu = x["z"] / (1 + np.exp(-x["z"]))
    np.testing.assert_allclose(ref, (dt * x["u"] * bc + x["D"][:, None] * x["u"]) * silu,
                               rtol=1e-12, atol=1e-14)


def _slow_decay_inputs(spec, params, rng) -> dict:
    """The hard case: dt ~ 1e-4, so exp(dt A) ~ 1 - 1e-4 |A| and a channel remembers ~1e4
    steps: over a long sequence the state is a running sum and rounding errors accumulate."""
    x = spec.make_inputs(params, rng)
    x["delta_bias"][:] = math.log(math.expm1(1e-4))
    return x


def test_selective_scan_reference_matches_a_scalar_loop_on_a_long_sequence(kernels):
    spec = kernels["selective_scan"].spec
    params = spec.resolve({"batch": 1, "dim": 2, "seqlen": 16384, "dstate": 4})
    x = _slow_decay_inputs(spec, params, RNG)
    (ref,) = spec.reference(x, params)
    u, delta, z = (x[k][0].tolist() for k in ("u", "delta", "z"))
    bm, cm = x["B"][0].T.tolist(), x["C"][0].T.tolist()
    for d in range(2):
        a_row, bias, skip = x["A"][d].tolist(), float(x["delta_bias"][d]), float(x["D"][d])
        state = [0.0] * 4
        out = []
        for t in range(16384):
            dt = math.log1p(math.exp(delta[d][t] + bias))
            y = 0.0
            for n in range(4):
                state[n] = math.exp(dt * a_row[n]) * state[n] + dt * bm[t][n] * u[d][t]
                y += cm[t][n] * state[n]
            zt = z[d][t]
            out.append((y + skip * u[d][t]) * zt / (1.0 + math.exp(-zt)))
        np.testing.assert_allclose(ref[0, d], out, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variant", ["selective_scan_numpy", "selective_scan_torch",
                                     "selective_scan_torch_chunked", "selective_scan_jax"])
def test_selective_scan_long_sequence_float32_within_tolerance(kernels, variant):
    """16384 slowly-decaying steps in float32: sequential float32 states drift with the length
    (the NumPy backend reaches ~10 eps here against ~1 eps at L = 1024), which the sqrt(L)
    term of the tolerance allows; a flat bound would not."""
    kernel = kernels["selective_scan"]
    spec = kernel.spec
    params = spec.resolve({"batch": 1, "dim": 16, "seqlen": 16384, "dstate": 16})
    x = {k: v.astype(np.float32) for k, v in _slow_decay_inputs(spec, params, RNG).items()}
    (ref,) = spec.reference({k: v.astype(np.float64) for k, v in x.items()}, params)
    module = import_backend(kernel.folder / f"{variant}.py")
    if variant.endswith("numpy"):
        out = module.forward(*x.values())
    elif variant.endswith("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)
        out = np.asarray(jax.jit(module.forward)(*x.values()), dtype=np.float64)
    else:
        out = module.forward(*(torch.from_numpy(v) for v in x.values())).double().numpy()
    err = error(spec, params, out, ref)
    assert err.passed, err.reason
    assert err.rel_l2 < spec.tolerance(params, "float32").bound("float32") / 3


def _scan32(x: dict, params: dict, *, use_bias=True, decay_dtype="float32", lag=0,
            skip=True) -> np.ndarray:
    """A float32 sequential scan with one thing changed (or none)."""
    f = {k: v.astype(np.float32) for k, v in x.items()}
    dt = f["delta"] + (f["delta_bias"][:, None] if use_bias else np.float32(0))
    dt = np.logaddexp(np.float32(0), dt)
    state = np.zeros(f["u"].shape[:2] + f["A"].shape[1:], dtype=np.float32)
    y = np.empty_like(f["u"])
    for t in range(f["u"].shape[2]):
        prev = state
        decay = round_to(np.exp(dt[:, :, t, None] * f["A"]), decay_dtype).astype(np.float32)
        state = decay * state \
            + (dt[:, :, t] * f["u"][:, :, t])[:, :, None] * f["B"][:, None, :, t]
        y[:, :, t] = np.einsum("bdn,bn->bd", prev if lag else state, f["C"][:, :, t])
    if skip:
        y += f["D"][:, None] * f["u"]
    return (y * f["z"] / (1 + np.exp(-f["z"]))).astype(np.float64)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_selective_scan_tolerance_separates_right_from_wrong(kernels, dtype):
    spec = kernels["selective_scan"].spec
    params = spec.resolve({"batch": 1, "dim": 32, "seqlen": 1024, "dstate": 16})
    x = {k: round_to(v, dtype) for k, v in spec.make_inputs(params, RNG).items()}
    (ref,) = spec.reference(x, params)

    def ok(out):
        return passes(spec, params, round_to(out, dtype), ref, dtype)

    assert ok(_scan32(x, params))
    assert not ok(_scan32(x, params, use_bias=False))
    assert not ok(_scan32(x, params, lag=1))  # y_t from x_{t-1}
    assert not ok(_scan32(x, params, skip=False))  # D * u forgotten
    if dtype == "float32":  # decays rounded to half precision each step
        assert not ok(_scan32(x, params, decay_dtype="float16"))


def _torch_scan(x: dict, params: dict) -> torch.Tensor:
    """The scan step by step on torch tensors, for autograd: an independent formulation of the
    forward (the steps are unbind() slices, so autograd's backward stays linear in L)."""
    dt = x["delta"] + x["delta_bias"][:, None]
    if params["delta_softplus"]:
        dt = F.softplus(dt)
    state = x["u"].new_zeros(x["u"].shape[:2] + x["A"].shape[1:])
    ys = []
    for dt_t, u_t, b_t, c_t in zip(dt.unbind(2), x["u"].unbind(2), x["B"].unbind(2),
                                   x["C"].unbind(2)):
        state = torch.exp(dt_t[..., None] * x["A"]) * state \
            + (dt_t * u_t)[..., None] * b_t[:, None, :]
        ys.append(torch.einsum("bdn,bn->bd", state, c_t))
    y = torch.stack(ys, dim=2) + x["D"][:, None] * x["u"]
    return y * x["z"] * torch.sigmoid(x["z"]) if params["gate"] else y


def _check_backward_against_autograd(spec, params, x, bound):
    (out,) = spec.reference(x, params)
    g = RNG.standard_normal(out.shape)
    grads = spec.reference_backward(x, params, (g,))
    leaves = {k: t64(v).requires_grad_() for k, v in x.items()}
    y = _torch_scan(leaves, params)
    np.testing.assert_allclose(y.detach().numpy(), out, rtol=1e-10, atol=1e-12)
    auto = torch.autograd.grad(y, list(leaves.values()), t64(g), allow_unused=True)
    assert len(grads) == len(spec.grad_inputs) == len(auto)
    for name, ref, a in zip(spec.grad_inputs, grads, auto):
        assert ref.shape == x[name].shape, name
        if a is None:  # z does not reach the output without the gate
            assert name == "z" and not params["gate"]
            np.testing.assert_array_equal(ref, 0.0)
            continue
        a = a.numpy()
        assert np.linalg.norm(ref - a) <= bound * np.linalg.norm(a), name


@pytest.mark.parametrize("gate, softplus", [(True, True), (False, True), (True, False),
                                            (False, False)])
def test_selective_scan_reference_backward_matches_torch_autograd(kernels, gate, softplus):
    spec = kernels["selective_scan"].spec
    params = spec.resolve({**SMALL["selective_scan"], "gate": gate, "delta_softplus": softplus})
    _check_backward_against_autograd(spec, params, spec.make_inputs(params, RNG), 1e-13)


def test_selective_scan_reference_backward_matches_autograd_on_a_long_sequence(kernels):
    """The hard case: 4096 slowly-decaying steps, so the adjoint runs back over thousands of
    steps and the reference's sqrt(L)-step checkpoint chunks are all used."""
    spec = kernels["selective_scan"].spec
    params = spec.resolve({"batch": 1, "dim": 4, "seqlen": 4096, "dstate": 4})
    _check_backward_against_autograd(spec, params, _slow_decay_inputs(spec, params, RNG), 1e-11)


@pytest.fixture(scope="module")
def long_scan_gradients(kernels):
    """float32 inputs of the hard case at L = 16384, a cotangent, and the float64 gradients."""
    spec = kernels["selective_scan"].spec
    params = spec.resolve({"batch": 1, "dim": 16, "seqlen": 16384, "dstate": 16})
    x = {k: v.astype(np.float32) for k, v in _slow_decay_inputs(spec, params, RNG).items()}
    g = RNG.standard_normal(x["u"].shape).astype(np.float32)
    refs = spec.reference_backward({k: v.astype(np.float64) for k, v in x.items()}, params,
                                   (g.astype(np.float64),))
    return params, x, g, refs


@pytest.mark.parametrize("variant", ["selective_scan_numpy", "selective_scan_numba",
                                     "selective_scan_torch_chunked", "selective_scan_jax"])
def test_selective_scan_long_sequence_gradients_float32_within_tolerance(
        kernels, long_scan_gradients, variant):
    """Gradients of 16384 slowly-decaying steps in float32: the sequential backends stay well
    inside every gradient's bound (NumPy only since its training path rounds float64 decays:
    its float32 exp's slight bias cost 80-300 eps here). The torch default loop (quadratic
    autograd) and jax's associative scan (outside the bound here, see spec.py) are left out."""
    params, x, g, refs = long_scan_gradients
    kernel = kernels["selective_scan"]
    module = import_backend(kernel.folder / f"{variant}.py")
    if variant.endswith(("numpy", "numba")):
        grads = module.backward(module.forward_train(*x.values())[1], g)
    elif variant.endswith("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)
        _, vjp = jax.vjp(module.forward, *x.values())
        grads = [np.asarray(d) for d in jax.jit(vjp)(g)]
    else:
        leaves = [torch.from_numpy(v).requires_grad_() for v in x.values()]
        grads = [d.numpy() for d in torch.autograd.grad(module.forward(*leaves), leaves,
                                                        torch.from_numpy(g))]
    for name, got, ref in zip(kernel.spec.grad_inputs, grads, refs):
        assert got.dtype == np.float32, name
        bound = kernel.spec.grad_tolerance(params, "float32", name).bound("float32")
        err = compare(name, np.asarray(got, np.float64), ref, "float32", bound)
        assert err.passed, (name, err.reason)
        assert err.rel_l2 < bound / 3, (name, err.rel_l2 / bound)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("gate, softplus", [(False, False), (True, False), (False, True)])
def test_selective_scan_hand_written_backward_flags_and_chunks(kernels, worker, backend, gate,
                                                               softplus):
    """The flags the smoke suite leaves at their defaults, on a shape whose sequence spans
    several saved-state chunks with a ragged tail and whose channels span two numba blocks."""
    kernel = kernels["selective_scan"]
    impl = next(i for i in kernel.implementations if i.family == backend and not i.variant)
    params = kernel.spec.resolve({"batch": 2, "dim": 70, "seqlen": 150, "dstate": 5,
                                  "gate": gate, "delta_softplus": softplus})
    case = Case(kernel.name, backend, "", "cpu", "float32", "backward", tuple(params.items()))
    record = worker.execute(case, FAST, str(kernel.folder), str(impl.path))
    assert record["status"] == "ok", record.get("reason")
    assert len(record["accuracy"]["outputs"]) == 8


#: the flags the smoke suite leaves at their defaults, on every backend (torch_compile is left
#: out to keep this fast: it compiles the same files that torch_eager runs)
FLAG_CASES = [(backend, variant, dtype)
              for backend, variant in [("numpy", ""), ("numba", ""), ("torch_eager", ""),
                                       ("torch_eager", "chunked"), ("jax_jit", ""),
                                       ("jax_jit", "assoc"), ("triton", "")]
              for dtype in (["float32"] if backend in ("numpy", "numba")
                            else ["float32", "bfloat16"])]


@pytest.mark.parametrize("backend, variant, dtype", FLAG_CASES)
def test_selective_scan_flags_on_every_backend(kernels, worker, backend, variant, dtype):
    kernel = kernels["selective_scan"]
    family = backend.split("_")[0]
    impl = next(i for i in kernel.implementations if i.family == family and i.variant == variant)
    params = kernel.spec.resolve({"batch": 2, "dim": 5, "seqlen": 20, "dstate": 4,
                                  "gate": False, "delta_softplus": False})
    case = Case(kernel.name, backend, variant, "cpu", dtype, "forward", tuple(params.items()))
    record = worker.execute(case, FAST, str(kernel.folder), str(impl.path))
    assert record["status"] == "ok", record.get("reason")
