"""Specs of the elementwise and optimizer kernels (swiglu, gelu, rope, pairwise_distance,
adamw_step): each float64 reference against an independent implementation (torch.nn.functional
and torch.optim in float64, SciPy, math.erfc, complex rotations), on fresh inputs and on the
hard inputs the specs name; each tolerance passes a correct result rounded once and fails a
slightly wrong implementation; and the pairwise-distance hard case is run on every backend.
The differentiable ones (swiglu, gelu in both forms, rope) also have their analytic float64
gradients checked against torch.autograd in float64, a wrong derivative failing the gradient
tolerance, and the hand-written NumPy/numba/Triton backward passes run on the hard inputs."""

import math

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.special
import torch
import torch.nn.functional as F

from kernbench.accuracy import compare
from kernbench.backends.base import nbytes
from kernbench.case import Case
from kernbench.discovery import import_backend
from kernbench.dtypes import round_to
from kernbench.errors import UsageError

from .conftest import FAST

RNG = np.random.default_rng(7)
ALGOS = ["swiglu", "gelu", "rope", "pairwise_distance", "adamw_step"]


def passes(spec, params, out, ref, dtype="float32") -> bool:
    bound = spec.tolerance(params, dtype).bound(dtype)
    return compare("out", out, ref, dtype, bound).passed


def t64(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


# -- common -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALGOS)
def test_inputs_seeded_float64_and_costs_positive(kernels, name):
    spec = kernels[name].spec
    small = {"swiglu": {"rows": 4, "hidden": 6}, "gelu": {"rows": 4, "cols": 6},
             "rope": {"batch": 1, "heads": 2, "seq": 5, "head_dim": 8},
             "pairwise_distance": {"n": 5, "m": 4, "d": 3}, "adamw_step": {"numel": 9}}[name]
    params = spec.resolve(small)
    a = spec.make_inputs(params, np.random.default_rng(1))
    b = spec.make_inputs(params, np.random.default_rng(1))
    c = spec.make_inputs(params, np.random.default_rng(2))
    assert tuple(a) == spec.inputs
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].dtype == np.float64 and np.isfinite(a[k]).all()
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    refs = spec.reference(a, params)
    assert len(refs) == len(spec.outputs)
    assert all(np.isfinite(r).all() and np.abs(r).max() > 0 for r in refs)
    assert spec.flops(params) > 0
    assert spec.bytes(params, 4) == 2 * spec.bytes(params, 2)
    # minimum traffic: at least every input read once and every output written once
    n_in = sum(v.size for v in a.values())
    n_out = sum(r.size for r in refs)
    assert spec.bytes(params, 4) == pytest.approx(4 * (n_in + n_out))


@pytest.mark.parametrize("name, bad", [
    ("swiglu", {"rows": 0}), ("gelu", {"approximate": "erf"}), ("gelu", {"cols": -1}),
    ("rope", {"head_dim": 63}), ("rope", {"theta": 1.0}), ("pairwise_distance", {"d": 0}),
    ("pairwise_distance", {"offset": -1.0}), ("adamw_step", {"step": 0}),
    ("adamw_step", {"beta1": 1.0}), ("adamw_step", {"eps": 0.0}), ("adamw_step", {"lr": -1e-3}),
])
def test_check_rejects_nonsense(kernels, name, bad):
    key = next(iter(bad))
    with pytest.raises(UsageError, match=key):
        kernels[name].spec.resolve(bad, "t.toml")


# -- swiglu -------------------------------------------------------------------------------------
def test_swiglu_reference_matches_torch(kernels):
    spec = kernels["swiglu"].spec
    params = spec.resolve({"rows": 17, "hidden": 301})
    x = spec.make_inputs(params, RNG)
    (ref,) = spec.reference(x, params)
    expect = (F.silu(t64(x["a"])) * t64(x["b"])).numpy()
    np.testing.assert_allclose(ref, expect, rtol=1e-13, atol=1e-300)
    extreme = {"a": np.array([[-800.0, -50.0, 0.0, 50.0, 800.0]]), "b": np.ones((1, 5))}
    (r,) = spec.reference(extreme, params)
    np.testing.assert_allclose(r, [[0.0, -50.0 / (1 + math.exp(50)), 0.0, 50.0, 800.0]])


def test_swiglu_tolerance_separates_right_from_wrong(kernels):
    spec = kernels["swiglu"].spec
    params = spec.resolve({"rows": 32, "hidden": 256})
    x = spec.make_inputs(params, RNG)
    (ref,) = spec.reference(x, params)
    assert passes(spec, params, round_to(ref, "float32"), ref)
    assert passes(spec, params, round_to(ref, "bfloat16"), ref, "bfloat16")
    a, b = x["a"], x["b"]
    sig = 1 / (1 + np.exp(-a))
    assert not passes(spec, params, sig * b, ref)  # sigmoid instead of silu
    assert not passes(spec, params, a * sig, ref)  # forgot the up projection
    assert not passes(spec, params, ref * (1 + 1e-5), ref)


# -- gelu ---------------------------------------------------------------------------------------
def test_gelu_erfc_matches_libm(kernels):
    import importlib

    erfc = importlib.import_module(type(kernels["gelu"].spec).__module__).erfc
    x = np.concatenate([RNG.standard_normal(20000) * 3, RNG.uniform(-27, 27, 20000),
                        np.linspace(-1.01, 1.01, 2001), [0.0, -0.0, 1.0, -1.0, 8.0, -8.0]])
    expect = np.array([math.erfc(v) for v in x])
    err = np.abs(erfc(x) - expect)
    # relative error where erfc is a normal number; past x ~ 26.5 it is subnormal, where the
    # spacing of doubles (not the formula) sets the error: a few units of the smallest one
    normal = np.abs(expect) >= np.finfo(np.float64).tiny
    assert (err[normal] / np.abs(expect[normal])).max() < 1e-14
    assert (err[~normal] <= 4 * np.finfo(np.float64).smallest_subnormal).all()
    np.testing.assert_array_equal(erfc(np.array([np.inf, -np.inf])), [0.0, 2.0])
    assert np.isnan(erfc(np.array([np.nan]))).all()


@pytest.mark.parametrize("form", ["none", "tanh"])
def test_gelu_reference_matches_torch_and_scipy(kernels, form):
    spec = kernels["gelu"].spec
    params = spec.resolve({"rows": 19, "cols": 333, "approximate": form})
    x = spec.make_inputs(params, RNG)["x"]
    (ref,) = spec.reference({"x": x}, params)
    # torch's exact form is 0.5 x (1 + erf(x/sqrt2)): it cancels for x << 0 (absolute error
    # ~eps |x|), where the reference's erfc form stays accurate to the last digits
    np.testing.assert_allclose(ref, F.gelu(t64(x), approximate=form).numpy(), rtol=1e-13,
                               atol=1e-14)
    if form == "none":
        via_scipy = 0.5 * x * scipy.special.erfc(-x / math.sqrt(2))
        np.testing.assert_allclose(ref, via_scipy, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("form", ["none", "tanh"])
def test_gelu_wrong_form_fails(kernels, form):
    spec = kernels["gelu"].spec
    params = spec.resolve({"rows": 32, "cols": 256, "approximate": form})
    x = spec.make_inputs(params, RNG)
    (ref,) = spec.reference(x, params)
    other = spec.resolve({"rows": 32, "cols": 256,
                          "approximate": "tanh" if form == "none" else "none"})
    (wrong,) = spec.reference(x, other)
    assert passes(spec, params, round_to(ref, "float32"), ref)
    assert passes(spec, params, round_to(ref, "bfloat16"), ref, "bfloat16")
    assert not passes(spec, params, wrong, ref)
    assert not passes(spec, params, x["x"] * (x["x"] > 0), ref)  # relu


# -- rope ---------------------------------------------------------------------------------------
def _rope_complex(q: np.ndarray, theta: float) -> np.ndarray:
    """Independent form: pair i with i + D/2 as a complex number and rotate it by s * w_i."""
    *_, s, d = q.shape
    half = d // 2
    w = 1.0 / theta ** (np.arange(half) * 2.0 / d)
    rot = np.exp(1j * np.arange(s)[:, None] * w[None, :])
    z = (q[..., :half] + 1j * q[..., half:]) * rot
    return np.concatenate([z.real, z.imag], axis=-1)


def _rope_hf(q: torch.Tensor, theta: float) -> torch.Tensor:
    """HF Llama's apply_rotary_pos_emb with its duplicated [S, D] tables, in float64."""
    d, s = q.shape[-1], q.shape[-2]
    inv_freq = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    freqs = torch.outer(torch.arange(s, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    x1, x2 = q[..., : d // 2], q[..., d // 2:]
    rotate_half = torch.cat((-x2, x1), dim=-1)
    return q * emb.cos() + rotate_half * emb.sin()


@pytest.mark.parametrize("theta", [10000.0, 500000.0])
def test_rope_reference_and_tables_match_independent_forms(kernels, theta):
    spec = kernels["rope"].spec
    params = spec.resolve({"batch": 2, "heads": 3, "seq": 50, "head_dim": 48, "theta": theta})
    x = spec.make_inputs(params, RNG)
    assert x["cos"].shape == x["sin"].shape == (50, 24)
    (ref,) = spec.reference(x, params)
    np.testing.assert_allclose(ref, _rope_complex(x["q"], theta), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ref, _rope_hf(t64(x["q"]), theta).numpy(), rtol=0, atol=1e-12)
    # a rotation keeps each pair's norm
    half = 24
    np.testing.assert_allclose(ref[..., :half] ** 2 + ref[..., half:] ** 2,
                               x["q"][..., :half] ** 2 + x["q"][..., half:] ** 2, rtol=1e-12)


def test_rope_tolerance_separates_right_from_wrong(kernels):
    spec = kernels["rope"].spec
    params = spec.resolve({"batch": 1, "heads": 4, "seq": 64, "head_dim": 64})
    x = spec.make_inputs(params, RNG)
    (ref,) = spec.reference(x, params)
    assert passes(spec, params, round_to(ref, "float32"), ref)
    assert passes(spec, params, round_to(ref, "bfloat16"), ref, "bfloat16")
    q, cos, sin = x["q"], x["cos"], x["sin"]
    # the interleaved layout (pairs 2i, 2i+1) is a different operation
    q1, q2 = q[..., 0::2], q[..., 1::2]
    inter = np.empty_like(q)
    inter[..., 0::2], inter[..., 1::2] = q1 * cos - q2 * sin, q2 * cos + q1 * sin
    assert not passes(spec, params, inter, ref)
    half = q.shape[-1] // 2
    backwards = np.concatenate([q[..., :half] * cos + q[..., half:] * sin,
                                q[..., half:] * cos - q[..., :half] * sin], axis=-1)
    assert not passes(spec, params, backwards, ref)  # rotated by -angle
    assert not passes(spec, params, q, ref)


# -- backward (swiglu, gelu, rope) ----------------------------------------------------------------
def _autograd64(fn, inputs: dict, wrt: tuple[str, ...], cot: np.ndarray) -> tuple:
    """Independent gradients: torch.autograd in float64 of <fn(**inputs), cot> w.r.t. `wrt`."""
    ts = {k: t64(v).requires_grad_(k in wrt) for k, v in inputs.items()}
    grads = torch.autograd.grad(fn(**ts), [ts[k] for k in wrt], t64(cot))
    return tuple(g.numpy() for g in grads)


def grad_passes(spec, params, name, got, ref, dtype="float32") -> bool:
    bound = spec.grad_tolerance(params, dtype, name).bound(dtype)
    return compare(f"d_{name}", got, ref, dtype, bound).passed


#: swiglu's hard values: both saturated tails (exp overflows), the zero of silu' near -1.2785
SWIGLU_HARD = np.array([-800.0, -100.0, -50.0, -1.2785, -1e-3, 0.0, 1e-3, 1.0, 50.0, 100.0, 800.0])


def _gelu_hard() -> np.ndarray:
    """The gelu forward tests' hard inputs: far tails, the Cephes branch points, exact zeros."""
    return np.concatenate([RNG.uniform(-27, 27, 2000), np.linspace(-1.01, 1.01, 201) * math.sqrt(2),
                           [0.0, -0.0, 8.0, -8.0, 40.0, -40.0, 1e4, -1e4]])[None, :]


def _hard_inputs(spec, name: str, params: dict) -> dict:
    if name == "swiglu":
        a = np.concatenate([SWIGLU_HARD, 3.0 * RNG.standard_normal(500)])[None, :]
        return {"a": a, "b": RNG.standard_normal(a.shape)}
    if name == "gelu":
        return {"x": _gelu_hard()}
    return spec.make_inputs(params, RNG)  # rope: Llama-3's base and a half (24) of no power of 2


BACKWARD_CASES = [
    ("swiglu", {"rows": 17, "hidden": 301}),
    ("gelu", {"rows": 19, "cols": 333, "approximate": "none"}),
    ("gelu", {"rows": 19, "cols": 333, "approximate": "tanh"}),
    ("rope", {"batch": 2, "heads": 3, "seq": 50, "head_dim": 48, "theta": 10000.0}),
    ("rope", {"batch": 2, "heads": 3, "seq": 50, "head_dim": 48, "theta": 500000.0}),
]


def _torch_forward(name: str, params: dict):
    """Each algorithm written independently in torch (library ops where torch has them)."""
    if name == "swiglu":
        return lambda a, b: F.silu(a) * b
    if name == "gelu":
        return lambda x: F.gelu(x, approximate=params["approximate"])
    return lambda q, cos, sin: _rope_hf(q, params["theta"])  # builds its own [S, D] tables


@pytest.mark.parametrize("name, given", BACKWARD_CASES,
                         ids=[f"{n}-{'-'.join(map(str, g.values()))}" for n, g in BACKWARD_CASES])
def test_reference_backward_matches_torch_autograd(kernels, name, given):
    """On fresh inputs and on the hard inputs of the forward tests."""
    spec = kernels[name].spec
    params = spec.resolve(given)
    fn = _torch_forward(name, params)
    for x in (spec.make_inputs(params, RNG), _hard_inputs(spec, name, params)):
        (out,) = spec.reference(x, params)
        g = RNG.standard_normal(out.shape)
        got = spec.reference_backward(x, params, (g,))
        expect = _autograd64(fn, x, spec.grad_inputs, g)
        assert len(got) == len(spec.grad_inputs)
        for gname, r, e in zip(spec.grad_inputs, got, expect):
            assert r.shape == x[gname].shape and np.isfinite(r).all(), gname
            # atol: torch's exact-form gelu' drops Phi(x) ~ 1e-160 against x phi(x) for x << 0,
            # and 1 + a (1 - s) cancels at silu's turning point
            np.testing.assert_allclose(r, e, rtol=1e-12, atol=1e-14, err_msg=f"{name} d_{gname}")


def test_rope_backward_inverts_the_rotation(kernels):
    """A rotation is orthogonal: its VJP applied to its own output gives back q."""
    spec = kernels["rope"].spec
    params = spec.resolve({"batch": 1, "heads": 2, "seq": 33, "head_dim": 80, "theta": 500000.0})
    x = spec.make_inputs(params, RNG)
    (dq,) = spec.reference_backward(x, params, spec.reference(x, params))
    np.testing.assert_allclose(dq, x["q"], rtol=0, atol=1e-13)


def test_backward_tolerances_separate_right_from_wrong(kernels):
    rng = np.random.default_rng(5)
    # swiglu: silu' taken as sigmoid (the derivative of a * s with s held fixed), d_b without a
    spec = kernels["swiglu"].spec
    params = spec.resolve({"rows": 32, "hidden": 256})
    x = spec.make_inputs(params, rng)
    g = rng.standard_normal(x["a"].shape)
    da, db = spec.reference_backward(x, params, (g,))
    s = 1 / (1 + np.exp(-x["a"]))
    assert grad_passes(spec, params, "a", round_to(da, "float32"), da)
    assert grad_passes(spec, params, "b", round_to(db, "bfloat16"), db, "bfloat16")
    assert not grad_passes(spec, params, "a", g * x["b"] * s, da)
    assert not grad_passes(spec, params, "b", g * s, db)
    assert not grad_passes(spec, params, "a", da * (1 + 1e-5), da)
    # gelu: each form's derivative against the other's, and Phi alone (x phi(x) forgotten)
    spec = kernels["gelu"].spec
    for form, other in (("none", "tanh"), ("tanh", "none")):
        params = spec.resolve({"rows": 32, "cols": 256, "approximate": form})
        x = spec.make_inputs(params, rng)
        g = rng.standard_normal(x["x"].shape)
        (dx,) = spec.reference_backward(x, params, (g,))
        (wrong,) = spec.reference_backward(x, {**params, "approximate": other}, (g,))
        assert grad_passes(spec, params, "x", round_to(dx, "float32"), dx)
        assert grad_passes(spec, params, "x", round_to(dx, "bfloat16"), dx, "bfloat16")
        assert not grad_passes(spec, params, "x", wrong, dx)
        assert not grad_passes(spec, params, "x", g * spec.reference(x, params)[0] / x["x"], dx)
    # rope: the cotangent rotated by +angle (the forward applied to g) instead of -angle
    spec = kernels["rope"].spec
    params = spec.resolve({"batch": 1, "heads": 4, "seq": 64, "head_dim": 64})
    x = spec.make_inputs(params, rng)
    g = rng.standard_normal(x["q"].shape)
    (dq,) = spec.reference_backward(x, params, (g,))
    (forward_of_g,) = spec.reference({**x, "q": g}, params)
    assert grad_passes(spec, params, "q", round_to(dq, "float32"), dq)
    assert not grad_passes(spec, params, "q", forward_of_g, dq)
    assert not grad_passes(spec, params, "q", g, dq)


HAND_WRITTEN = [(n, f, form) for n, form in (("swiglu", None), ("gelu", "none"), ("gelu", "tanh"),
                                             ("rope", None))
                for f in ("numpy", "numba", "triton")]


@pytest.mark.parametrize("name, family, form", HAND_WRITTEN)
def test_hand_written_backward_on_hard_inputs(kernels, name, family, form):
    """forward_train/backward of the NumPy, numba and Triton files in float32 on the hard
    inputs (saturated tails, exp overflow): finite, within the gradient tolerance, and saving
    only what the docstrings say (the inputs for swiglu/gelu, the tables for rope)."""
    spec = kernels[name].spec
    given = next(g for n, g in BACKWARD_CASES if n == name and g.get("approximate", form) == form)
    params = spec.resolve({**given, "theta": 500000.0} if name == "rope" else given)
    static = spec.static_kwargs(params)
    x32 = {k: round_to(v, "float32") for k, v in _hard_inputs(spec, name, params).items()}
    (out,) = spec.reference(x32, params)
    g32 = round_to(RNG.standard_normal(out.shape), "float32")
    refs = spec.reference_backward(x32, params, (g32,))
    module = import_backend(kernels[name].folder / f"{name}_{family}.py")
    wrap = torch.from_numpy if family == "triton" else (lambda a: a)
    args = [wrap(x32[k].astype(np.float32)) for k in spec.inputs]
    _, saved = module.forward_train(*args, **static)
    grads = module.backward(saved, wrap(g32.astype(np.float32)), **static)
    saved_names = {"swiglu": ("a", "b"), "gelu": ("x",), "rope": ("cos", "sin")}[name]
    assert nbytes(saved) == 4 * sum(x32[k].size for k in saved_names)
    assert len(grads) == len(spec.grad_inputs)
    for gname, got, ref in zip(spec.grad_inputs, grads, refs):
        got = np.asarray(got, dtype=np.float64)
        assert got.shape == ref.shape and np.isfinite(got).all(), gname
        assert grad_passes(spec, params, gname, got, ref), (gname, compare(
            gname, got, ref, "float32", 1.0).rel_l2)


# -- pairwise_distance --------------------------------------------------------------------------
@pytest.mark.parametrize("offset", [0.0, 100.0, 1e4])
def test_pairwise_reference_matches_scipy(kernels, offset):
    spec = kernels["pairwise_distance"].spec
    params = spec.resolve({"n": 40, "m": 33, "d": 17, "offset": offset})
    x = spec.make_inputs(params, RNG)
    (ref,) = spec.reference(x, params)
    expect = scipy.spatial.distance.cdist(x["x"], x["y"], "sqeuclidean")
    np.testing.assert_allclose(ref, expect, rtol=1e-9)
    # the hard inputs: distances ~2d, norms ~d * offset^2
    assert np.median(ref) == pytest.approx(2 * 17, rel=0.3)


def test_pairwise_hard_inputs_break_the_plain_gemm_form(kernels):
    """offset makes the uncentred GEMM form fail the float32 tolerance; centring cures it."""
    spec = kernels["pairwise_distance"].spec
    for offset, gemm_ok in ((0.0, True), (100.0, False)):
        params = spec.resolve({"n": 64, "m": 48, "d": 32, "offset": offset})
        x32 = {k: round_to(v, "float32") for k, v in spec.make_inputs(params, RNG).items()}
        (ref,) = spec.reference(x32, params)
        x, y = (x32[k].astype(np.float32) for k in ("x", "y"))
        gemm = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
        mu = np.concatenate([x, y]).mean(0)
        xc, yc = x - mu, y - mu
        centred = (xc * xc).sum(1)[:, None] + (yc * yc).sum(1)[None, :] - 2 * xc @ yc.T
        assert passes(spec, params, gemm, ref) is gemm_ok
        assert passes(spec, params, centred, ref)
        assert passes(spec, params, round_to(ref, "float32"), ref)
        assert not passes(spec, params, np.sqrt(ref), ref)  # distances, not squared


HARD = {"n": 70, "m": 45, "d": 40, "offset": 100.0}
#: what each backend does on the hard case (see the spec docstring): torch.cdist's GEMM path
#: fails it, every other backend stays within tolerance. torch_compile is left out to keep
#: this test fast; the cpu suite's offset = 100 case covers it.
HARD_EXPECT = [
    ("numpy", "", "float32", "ok"), ("numba", "", "float32", "ok"),
    ("jax_jit", "", "float32", "ok"), ("jax_jit", "", "bfloat16", "ok"),
    ("triton", "", "float32", "ok"), ("triton", "", "bfloat16", "ok"),
    ("torch_eager", "manual", "float32", "ok"), ("torch_eager", "manual", "bfloat16", "ok"),
    ("torch_eager", "", "float32", "failed"), ("torch_eager", "", "bfloat16", "failed"),
]


@pytest.mark.parametrize("backend, variant, dtype, status", HARD_EXPECT)
def test_pairwise_hard_case_on_every_backend(kernels, worker, backend, variant, dtype, status):
    kernel = kernels["pairwise_distance"]
    family = backend.split("_")[0]
    impl = next(i for i in kernel.implementations if i.family == family and i.variant == variant)
    params = kernel.spec.resolve(HARD)
    case = Case(kernel.name, backend, variant, "cpu", dtype, "forward", tuple(params.items()))
    record = worker.execute(case, FAST, str(kernel.folder), str(impl.path))
    assert record["status"] == status, record.get("reason")
    if status == "failed":
        assert record["reason"].startswith("inaccurate")
        assert record["accuracy"]["rel_l2"] > 100 * record["accuracy"]["tolerance"]


# -- adamw_step ---------------------------------------------------------------------------------
def _torch_adamw(x: dict, params: dict) -> tuple[np.ndarray, ...]:
    """torch.optim.AdamW (single-tensor path, float64) from the given state, one step."""
    p = torch.nn.Parameter(t64(x["param"]).clone())
    opt = torch.optim.AdamW([p], lr=params["lr"], betas=(params["beta1"], params["beta2"]),
                            eps=params["eps"], weight_decay=params["weight_decay"],
                            foreach=False, fused=False)
    p.grad = t64(x["grad"]).clone()
    opt.state[p] = {"step": torch.tensor(float(params["step"] - 1)),
                    "exp_avg": t64(x["exp_avg"]).clone(),
                    "exp_avg_sq": t64(x["exp_avg_sq"]).clone()}
    opt.step()
    st = opt.state[p]
    assert float(st["step"]) == params["step"]
    return p.detach().numpy(), st["exp_avg"].numpy(), st["exp_avg_sq"].numpy()


@pytest.mark.parametrize("override", [{}, {"step": 1}, {"step": 1000, "weight_decay": 0.1},
                                      {"lr": 3e-4, "beta1": 0.8, "beta2": 0.95, "eps": 1e-6}])
def test_adamw_reference_matches_torch_optim(kernels, override):
    spec = kernels["adamw_step"].spec
    params = spec.resolve({"numel": 5000, **override})
    x = spec.make_inputs(params, RNG)
    assert (x["exp_avg_sq"] >= 0).all()
    ref = spec.reference(x, params)
    for got, expect in zip(ref, _torch_adamw(x, params)):
        np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-20)


def _adamw_variant(x, params, *, bias_correction=True, eps_inside=False, coupled=False,
                   decay=True):
    lr, b1, b2, eps, wd, t = (params[k] for k in ("lr", "beta1", "beta2", "eps",
                                                  "weight_decay", "step"))
    p, g = x["param"].copy(), x["grad"].copy()
    if coupled:  # Adam with L2 regularisation, not AdamW
        g = g + wd * p
    elif decay:
        p = p * (1 - lr * wd)
    m = b1 * x["exp_avg"] + (1 - b1) * g
    v = b2 * x["exp_avg_sq"] + (1 - b2) * g * g
    bc1, bc2 = (1 - b1 ** t, 1 - b2 ** t) if bias_correction else (1.0, 1.0)
    denom = np.sqrt(v / bc2 + eps) if eps_inside else np.sqrt(v / bc2) + eps
    return p - lr * (m / bc1) / denom, m, v


@pytest.mark.parametrize("wrong", [{"bias_correction": False}, {"eps_inside": True},
                                   {"coupled": True}, {"decay": False}])
def test_adamw_tolerance_separates_right_from_wrong(kernels, wrong):
    spec = kernels["adamw_step"].spec
    params = spec.resolve({"numel": 4096})
    x = spec.make_inputs(params, np.random.default_rng(11))  # margins: 5x (no decay) and up
    ref = spec.reference(x, params)
    right = _adamw_variant(x, params)
    bad = _adamw_variant(x, params, **wrong)

    def all_pass(outs, dtype="float32"):
        return all(passes(spec, params, o, r, dtype) for o, r in zip(outs, ref))

    assert all_pass([round_to(o, "float32") for o in right])
    assert all_pass([round_to(o, "bfloat16") for o in right], "bfloat16")
    assert not all_pass(bad)
