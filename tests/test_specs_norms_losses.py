"""Norms and losses (layer_norm, rms_norm, cross_entropy, focal_loss): each float64 reference
against an independent implementation on fresh inputs (torch.nn.functional in float64, scipy,
mpmath), the hard inputs (logits of +-1e4) through every backend, and plausible wrong kernels
failing the spec's tolerance while a correct float32 one passes. Likewise for the backward pass:
each analytic reference gradient against torch.autograd in float64 (and mpmath derivatives at
+-1e4), every backend's gradients on the hard logits, the Triton backward's wide-row paths, what
each hand-written backward saves, and plausible wrong gradients failing the tolerance."""

import dataclasses
import math

import mpmath
import numpy as np
import pytest
import scipy.special
import torch
import torch.nn.functional as F

from kernbench.accuracy import compare
from kernbench.discovery import discover, import_backend
from kernbench.dtypes import round_to
from kernbench.errors import UsageError
from kernbench.suite import build_suite

from .conftest import FAST

RNG = np.random.default_rng(20240611)
KERNELS = ("layer_norm", "rms_norm", "cross_entropy", "focal_loss")


def t64(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def draw(kernels, name, **params):
    spec = kernels[name].spec
    params = spec.resolve(params)
    return spec, params, spec.make_inputs(params, RNG)


def passes(spec, params, out, ref, dtype="float32") -> bool:
    """`out` rounded to `dtype` as a kernel would store it, judged by the spec's tolerance."""
    bound = spec.tolerance(params, dtype).bound(dtype)
    return compare("out", round_to(np.asarray(out), dtype), ref, dtype, bound).passed


# -- references against independent implementations ---------------------------------------------
def test_layer_norm_reference_matches_torch(kernels):
    spec, params, x = draw(kernels, "layer_norm", rows=17, hidden=33, eps=1e-3)
    (ref,) = spec.reference(x, params)
    want = F.layer_norm(t64(x["x"]), (33,), t64(x["weight"]), t64(x["bias"]), 1e-3)
    np.testing.assert_allclose(ref, want.numpy(), rtol=1e-12, atol=1e-12)
    const = {**x, "x": np.full((3, 33), 7.25)}  # zero variance: the output is the bias
    np.testing.assert_allclose(spec.reference(const, params)[0], np.tile(x["bias"], (3, 1)))


def test_rms_norm_reference_matches_torch(kernels):
    spec, params, x = draw(kernels, "rms_norm", rows=17, hidden=33, eps=1e-3)
    (ref,) = spec.reference(x, params)
    want = F.rms_norm(t64(x["x"]), (33,), t64(x["weight"]), 1e-3)
    np.testing.assert_allclose(ref, want.numpy(), rtol=1e-12, atol=1e-12)
    row_means = np.abs(x["x"].mean(axis=1))
    assert row_means.max() > 0.3  # rows are not centred: a layer-norm-style rms would show


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("scale", [1.0, 5e3])
def test_cross_entropy_reference_matches_torch(kernels, smoothing, scale):
    spec, params, x = draw(kernels, "cross_entropy", n=40, vocab=300,
                           label_smoothing=smoothing, logit_scale=scale)
    (ref,) = spec.reference(x, params)
    assert ref.shape == () and np.isfinite(ref)
    want = F.cross_entropy(t64(x["logits"]), t64(x["target"]), label_smoothing=smoothing)
    np.testing.assert_allclose(ref, want.numpy(), rtol=1e-12)
    # the definition literally: -sum_j q_j log softmax_j with the smoothed one-hot q
    q = np.full(x["logits"].shape, smoothing / 300)
    q[np.arange(40), x["target"]] += 1.0 - smoothing
    log_p = x["logits"] - scipy.special.logsumexp(x["logits"], axis=1, keepdims=True)
    np.testing.assert_allclose(ref, -(q * log_p).sum(axis=1).mean(), rtol=1e-12)


def test_cross_entropy_hard_inputs_are_hard(kernels):
    spec, params, x = draw(kernels, "cross_entropy", n=16, vocab=500, logit_scale=5e3)
    z = x["logits"]
    assert np.abs(z[::4]).max() > 1e4 and np.abs(z[1::4]).max() < 50
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.log(np.exp(z).sum(axis=1))).all()  # naive lse overflows
    (ref,) = spec.reference(x, params)
    # shift invariance: softmax ignores a constant per row, so 1e4 added changes nothing
    (shifted,) = spec.reference({**x, "logits": z + 1e4}, params)
    np.testing.assert_allclose(shifted, ref, rtol=1e-9)


def mp_focal(x: float, t: float, alpha: float, gamma: float) -> mpmath.mpf:
    """The paper's formula in 60-digit arithmetic, whose exponent range is unbounded: with
    x_t = x or -x, p_t = 1 / (1 + exp(-x_t)) and 1 - p_t = 1 / (1 + exp(x_t)) exactly, so
    nothing underflows or cancels at |x| = 1e4."""
    x_t = mpmath.mpf(x) if t == 1 else -mpmath.mpf(x)
    p_t = 1 / (1 + mpmath.exp(-x_t))
    alpha_t = alpha if t == 1 else 1 - alpha
    return -alpha_t * (1 / (1 + mpmath.exp(x_t))) ** gamma * mpmath.log(p_t)


@pytest.mark.parametrize("gamma", [0.0, 1.5, 2.0])
def test_focal_loss_reference_matches_mpmath(kernels, gamma):
    spec = kernels["focal_loss"].spec
    params = spec.resolve({"rows": 2, "classes": 6, "alpha": 0.3, "gamma": gamma})
    logits = np.array([[-1.2e4, -30.0, -0.5, 0.0, 2.5, 1.1e4],
                       [-1.1e4, -3.0, 0.7, 20.0, 40.0, 1.2e4]])
    targets = np.array([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]])
    (ref,) = spec.reference({"logits": logits, "targets": targets}, params)
    with mpmath.workdps(60):
        want = sum(mp_focal(a, b, 0.3, gamma) for a, b in zip(logits.ravel(), targets.ravel()))
        want = float(want / logits.size)
    assert ref.shape == ()
    assert math.isclose(float(ref), want, rel_tol=1e-13)


def test_focal_loss_reference_matches_torchvision_formula(kernels):
    """torchvision.ops.sigmoid_focal_loss's composition, in float64 via scipy."""
    spec, params, x = draw(kernels, "focal_loss", rows=64, classes=20, alpha=0.25, gamma=2.0,
                           logit_scale=5e3)
    (ref,) = spec.reference(x, params)
    z, t = x["logits"], x["targets"]
    assert np.abs(z[::4]).max() > 1e4 and set(np.unique(t)) == {0.0, 1.0}
    p = scipy.special.expit(z)
    ce = -(t * scipy.special.log_expit(z) + (1 - t) * scipy.special.log_expit(-z))
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** 2 * (0.25 * t + 0.75 * (1 - t))
    np.testing.assert_allclose(ref, loss.mean(), rtol=1e-12)


@pytest.mark.parametrize("name", KERNELS)
def test_inputs_are_seeded_and_float64(kernels, name):
    spec = kernels[name].spec
    params = spec.resolve({})
    small = {k: 64 for k in ("rows", "hidden", "n", "vocab", "classes") if k in params}
    params = spec.resolve(small)
    a = spec.make_inputs(params, np.random.default_rng(1))
    b = spec.make_inputs(params, np.random.default_rng(1))
    c = spec.make_inputs(params, np.random.default_rng(2))
    assert list(a) == list(spec.inputs)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.array_equal(a[k], c[k])
        want = np.int64 if k in spec.integer_inputs else np.float64
        assert a[k].dtype == want


@pytest.mark.parametrize("name, bad", [
    ("layer_norm", {"hidden": 0}), ("layer_norm", {"eps": 0.0}),
    ("rms_norm", {"rows": -1}), ("rms_norm", {"eps": -1e-6}),
    ("cross_entropy", {"vocab": 1}), ("cross_entropy", {"label_smoothing": 1.5}),
    ("cross_entropy", {"logit_scale": 0.0}),
    ("focal_loss", {"alpha": 1.5}), ("focal_loss", {"gamma": -1.0}),
    ("focal_loss", {"classes": 0}),
])
def test_nonsense_params_are_rejected(kernels, name, bad):
    with pytest.raises(UsageError, match=rf"{next(iter(bad))} must"):
        kernels[name].spec.resolve(bad)


# -- every backend on the hard inputs (+-1e4 logits) ----------------------------------------------
HARD = {
    "cross_entropy": {"n": 24, "vocab": 3000, "label_smoothing": 0.1, "logit_scale": 5e3},
    "focal_loss": {"rows": 32, "classes": 40, "gamma": 1.5, "logit_scale": 5e3},
}


#: the same logits on shapes numba's CUDA simulator runs in a second or two
HARD_SIMULATED = {
    "cross_entropy": {"n": 3, "vocab": 300, "label_smoothing": 0.1, "logit_scale": 5e3},
    "focal_loss": {"rows": 9, "classes": 40, "gamma": 1.5, "logit_scale": 5e3},
}


def hard_cases(kernels, modes=("forward",)):
    """Every implementation in float32 and bfloat16; torch.compile in float32 only (its code is
    generated from the same torch files, and each compile costs seconds); numba_cuda (float32,
    in the simulator) on tiny shapes."""
    def suite(backends, dtypes, shapes=HARD):
        data = {"suite": {"backends": backends, "dtypes": dtypes, "modes": list(modes)},
                "kernels": {name: {"cases": [params]} for name, params in shapes.items()}}
        return build_suite(data, kernels, "hard-inputs").cases

    return (suite(["numpy", "numba", "torch_eager", "jax_jit", "triton"],
                  ["float32", "bfloat16"]) + suite(["torch_compile"], ["float32"])
            + (suite(["numba_cuda"], ["float32"], HARD_SIMULATED) if modes == ("forward",)
               else ()))


HARD_CASES = {p.case.id: p for p in hard_cases(discover([]))}


def test_hard_cases_cover_every_implementation(kernels):
    for name in HARD:
        planned = {p.impl.path for p in HARD_CASES.values() if p.case.kernel == name}
        assert planned == {impl.path for impl in kernels[name].implementations}


@pytest.mark.parametrize("case_id", sorted(HARD_CASES))
def test_every_backend_is_stable_on_hard_logits(case_id, worker):
    p = HARD_CASES[case_id]
    record = worker.execute(p.case, FAST, str(p.kernel.folder), str(p.impl.path))
    if record["status"] == "unsupported":
        assert p.case.backend in ("numpy", "numba") and p.case.dtype == "bfloat16"
        return
    assert record["status"] == "ok", record.get("reason") or record
    assert record["accuracy"]["nonfinite"] == 0 and record["accuracy"]["passed"]


# -- Triton's wide-row paths, forced at small sizes under the interpreter ------------------------
def triton_module(kernels, name):
    return import_backend(kernels[name].folder / f"{name}_triton.py")


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
def test_triton_norm_chunked_path(kernels, name, monkeypatch):
    mod = triton_module(kernels, name)
    monkeypatch.setattr(mod, "MAX_FUSED_COLS", 64)
    monkeypatch.setattr(mod, "CHUNK_COLS", 32)
    spec, params, x = draw(kernels, name, rows=5, hidden=200)
    args = [t64(x[k]).float() for k in spec.inputs]
    out = mod.forward(*args, **spec.static_kwargs(params))
    (ref,) = spec.reference({k: a.double().numpy() for k, a in zip(spec.inputs, args)}, params)
    assert passes(spec, params, out.double().numpy(), ref)


def test_triton_cross_entropy_many_chunks(kernels, monkeypatch):
    """The online log-sum-exp over many chunks, with the row maximum in a late chunk."""
    mod = triton_module(kernels, "cross_entropy")
    monkeypatch.setattr(mod, "MAX_BLOCK_V", 64)
    monkeypatch.setattr(mod, "MEAN_BLOCK", 4)
    spec, params, x = draw(kernels, "cross_entropy", n=9, vocab=1000, label_smoothing=0.2,
                           logit_scale=5e3)
    x["logits"][:, 950] += 30.0
    logits = t64(x["logits"]).float()
    out = mod.forward(logits, t64(x["target"]), 0.2)
    (ref,) = spec.reference({"logits": logits.double().numpy(), "target": x["target"]}, params)
    assert out.shape == () and passes(spec, params, out.double().numpy(), ref)


# -- wrong kernels fail the tolerance, a correct float32 one passes ------------------------------
def f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def test_layer_norm_wrong_variants_fail(kernels):
    spec, params, x = draw(kernels, "layer_norm", rows=64, hidden=1024)
    xs, w, b, eps = f32(x["x"]), f32(x["weight"]), f32(x["bias"]), params["eps"]
    (ref,) = spec.reference({k: f32(v).astype(np.float64) for k, v in x.items()}, params)
    mean = xs.mean(-1, keepdims=True)
    var = xs.var(-1, keepdims=True)
    assert passes(spec, params, (xs - mean) / np.sqrt(var + eps) * w + b, ref)
    unbiased = xs.var(-1, keepdims=True, ddof=1)  # torch.var's default
    assert not passes(spec, params, (xs - mean) / np.sqrt(unbiased + eps) * w + b, ref)
    assert not passes(spec, params, (xs - mean) / np.sqrt(var + eps) * w, ref)  # no bias
    assert not passes(spec, params, (xs - mean) / np.sqrt(var + eps) * b + w, ref)  # swapped
    # eps outside the square root shows once eps is not negligible against the variance
    spec, params, x = draw(kernels, "layer_norm", rows=64, hidden=256, eps=1e-3)
    xs, w, b = f32(x["x"]), f32(x["weight"]), f32(x["bias"])
    (ref,) = spec.reference({k: f32(v).astype(np.float64) for k, v in x.items()}, params)
    mean = xs.mean(-1, keepdims=True)
    outside = (xs - mean) / (xs.std(-1, keepdims=True) + 1e-3) * w + b
    assert not passes(spec, params, outside, ref)


def test_rms_norm_wrong_variants_fail(kernels):
    spec, params, x = draw(kernels, "rms_norm", rows=64, hidden=1024, eps=1e-3)
    xs, w = f32(x["x"]), f32(x["weight"])
    (ref,) = spec.reference({k: f32(v).astype(np.float64) for k, v in x.items()}, params)
    ms = (xs * xs).mean(-1, keepdims=True)
    assert passes(spec, params, xs / np.sqrt(ms + 1e-3) * w, ref)
    assert not passes(spec, params, xs / (np.sqrt(ms) + 1e-3) * w, ref)  # eps outside
    assert not passes(spec, params, xs / np.sqrt(xs.var(-1, keepdims=True) + 1e-3) * w, ref)
    assert not passes(spec, params, xs / np.sqrt(ms + 1e-3) * (1 + w), ref)  # Gemma's 1 + w
    # Hugging Face's LlamaRMSNorm rounds x * rstd to bf16 before the weight: legitimate, passes
    bf = {k: round_to(v, "bfloat16") for k, v in x.items()}
    (ref_bf,) = spec.reference(bf, params)
    normed = round_to(bf["x"] / np.sqrt((bf["x"] ** 2).mean(-1, keepdims=True) + 1e-3),
                      "bfloat16")
    assert passes(spec, params, normed * bf["weight"], ref_bf, "bfloat16")


def test_cross_entropy_wrong_variants_fail(kernels):
    spec, params, x = draw(kernels, "cross_entropy", n=256, vocab=2000, label_smoothing=0.1)
    z, t = f32(x["logits"]), x["target"]
    (ref,) = spec.reference({"logits": z.astype(np.float64), "target": t}, params)
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    nll = lse - z[np.arange(256), t]
    smooth = lse - z.mean(1)
    good = (0.9 * nll + 0.1 * smooth).mean()
    assert passes(spec, params, good, ref)
    assert not passes(spec, params, nll.mean(), ref)  # label smoothing ignored
    assert not passes(spec, params, (nll + 0.1 * smooth).mean(), ref)  # no (1 - ls) on the nll
    assert not passes(spec, params, (0.9 * nll + 0.1 * smooth).sum(), ref)  # sum, not mean
    assert not passes(spec, params, good * (1 + 1e-4), ref)
    assert not passes(spec, params, good * 1.04, ref, "bfloat16")
    z16 = round_to(x["logits"], "bfloat16")  # the bf16 bound is loose, but not this loose
    (ref16,) = spec.reference({"logits": z16, "target": t}, params)
    lse16 = scipy.special.logsumexp(z16, axis=1)
    assert not passes(spec, params, (lse16 - z16[np.arange(256), t]).mean(), ref16, "bfloat16")
    # without the max subtracted, large logits overflow
    spec, params, x = draw(kernels, "cross_entropy", n=16, vocab=200, logit_scale=5e3)
    z = f32(x["logits"])
    (ref,) = spec.reference({"logits": z.astype(np.float64), "target": x["target"]}, params)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = (np.log(np.exp(z).sum(1)) - z[np.arange(16), x["target"]]).mean()
    assert not passes(spec, params, naive, ref)


def test_focal_loss_wrong_variants_fail(kernels):
    spec, params, x = draw(kernels, "focal_loss", rows=512, classes=20, logit_scale=5e3)
    z, t = torch.from_numpy(f32(x["logits"])), torch.from_numpy(f32(x["targets"]))
    (ref,) = spec.reference({"logits": z.double().numpy(), "targets": x["targets"]}, params)
    tv = import_backend(kernels["focal_loss"].folder / "focal_loss_torch_torchvision.py")
    assert passes(spec, params, tv.forward(z, t, 0.25, 2.0).numpy(), ref)
    assert not passes(spec, params, tv.forward(z, t, 0.75, 2.0).numpy(), ref)  # alpha swapped
    assert not passes(spec, params, tv.forward(z, t, 0.25, 0.0).numpy(), ref)  # gamma dropped
    ce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    assert not passes(spec, params, (0.25 * ce).mean().numpy(), ref)  # no modulating factor
    p = torch.sigmoid(z)
    p_t = torch.where(t > 0.5, p, 1 - p)
    alpha_t = torch.where(t > 0.5, 0.25, 0.75)
    naive = (-alpha_t * (1 - p_t) ** 2 * torch.log(p_t)).mean()  # log(sigmoid): inf at 1e4
    assert not passes(spec, params, naive.numpy(), ref)
    assert not passes(spec, params, tv.forward(z, t, 0.25, 2.0).numpy() * (1 + 1e-4), ref)


# -- backward: reference gradients against torch.autograd in float64 -----------------------------
def autograd(fn, inputs: dict, names, grad_out: np.ndarray) -> list[np.ndarray]:
    """torch.autograd's float64 vector-Jacobian product of fn(**tensors) with grad_out."""
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in inputs.items()}
    leaves = [tensors[k].requires_grad_() for k in names]
    out = fn(**tensors)
    grads = torch.autograd.grad(out, leaves, torch.from_numpy(np.array(grad_out)))
    return [g.numpy() for g in grads]


def cotangent(spec, params, inputs) -> tuple:
    return spec.make_grad_outputs(params, RNG, spec.reference(inputs, params))


def test_layer_norm_reference_backward_matches_autograd(kernels):
    spec, params, x = draw(kernels, "layer_norm", rows=17, hidden=33, eps=1e-3)
    x["x"][3] = 7.25  # a constant row: zero variance, xhat = 0, dx = rstd (dxhat - mean dxhat)
    cot = cotangent(spec, params, x)
    want = autograd(lambda x, weight, bias: F.layer_norm(x, (33,), weight, bias, 1e-3), x,
                    spec.grad_inputs, cot[0])
    for got, w in zip(spec.reference_backward(x, params, cot), want):
        np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-12 * np.abs(w).max())


def test_rms_norm_reference_backward_matches_autograd(kernels):
    spec, params, x = draw(kernels, "rms_norm", rows=17, hidden=33, eps=1e-3)
    x["x"][5] = 0.0  # a zero row: rstd = 1 / sqrt(eps), dx = rstd dxhat
    cot = cotangent(spec, params, x)
    want = autograd(lambda x, weight: F.rms_norm(x, (33,), weight, 1e-3), x, spec.grad_inputs,
                    cot[0])
    for got, w in zip(spec.reference_backward(x, params, cot), want):
        np.testing.assert_allclose(got, w, rtol=1e-10, atol=1e-12 * np.abs(w).max())


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("scale", [1.0, 5e3])
def test_cross_entropy_reference_backward_matches_autograd(kernels, smoothing, scale):
    spec, params, x = draw(kernels, "cross_entropy", n=40, vocab=300,
                           label_smoothing=smoothing, logit_scale=scale)
    cot = cotangent(spec, params, x)
    assert np.shape(cot[0]) == ()
    (want,) = autograd(lambda logits, target: F.cross_entropy(logits, target,
                                                              label_smoothing=smoothing),
                       x, ("logits",), cot[0])
    (got,) = spec.reference_backward(x, params, cot)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13 * np.abs(want).max())
    if scale > 1:  # the +-1e4 rows with a clear maximum have one-hot softmaxes: 1 - q there
        z = x["logits"][::4]
        ordered = np.sort(z, axis=1)
        clear = ordered[:, -1] - ordered[:, -2] > 800  # exp(-800) underflows to 0 in float64
        assert clear.sum() >= 5
        top = z.argmax(axis=1)[clear]
        q_top = smoothing / 300 + (x["target"][::4][clear] == top) * (1.0 - smoothing)
        np.testing.assert_array_equal(got[::4][clear][np.arange(len(top)), top],
                                      (1 - q_top) * (float(cot[0]) / 40))


def torchvision_focal(alpha: float, gamma: float):
    def fn(logits, targets):
        p = torch.sigmoid(logits)
        ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        p_t = p * targets + (1 - p) * (1 - targets)
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        return (alpha_t * ce * (1 - p_t) ** gamma).mean()
    return fn


@pytest.mark.parametrize("gamma", [0.0, 1.5, 2.0])
@pytest.mark.parametrize("scale", [1.0, 5e3])
def test_focal_loss_reference_backward_matches_autograd(kernels, gamma, scale):
    spec, params, x = draw(kernels, "focal_loss", rows=64, classes=20, alpha=0.25, gamma=gamma,
                           logit_scale=scale)
    cot = cotangent(spec, params, x)
    (want,) = autograd(torchvision_focal(0.25, gamma), x, ("logits",), cot[0])
    (got,) = spec.reference_backward(x, params, cot)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13 * np.abs(want).max())


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_loss_reference_backward_matches_mpmath(kernels, gamma):
    """Derivatives of the paper's formula in 60-digit arithmetic at +-1e4 and in between; gamma
    = 0.5 included, where autograd through (1 - p_t)^gamma gives NaN at p_t = 1."""
    spec = kernels["focal_loss"].spec
    params = spec.resolve({"rows": 2, "classes": 6, "alpha": 0.3, "gamma": gamma})
    logits = np.array([[-1.2e4, -30.0, -0.5, 0.0, 2.5, 1.1e4],
                       [-1.1e4, -3.0, 0.7, 20.0, 40.0, 1.2e4]])
    targets = np.array([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]])
    (got,) = spec.reference_backward({"logits": logits, "targets": targets}, params,
                                     (np.asarray(12.0),))  # g / count = 1
    with mpmath.workdps(60):
        for a, b, d in zip(logits.ravel(), targets.ravel(), got.ravel()):
            want = float(mpmath.diff(lambda v, b=b: mp_focal(v, b, 0.3, gamma), a))
            assert math.isclose(d, want, rel_tol=1e-12, abs_tol=1e-300), (a, b, d, want)


# -- backward: every backend on the hard logits ----------------------------------------------------
HARD_BACKWARD = {p.case.id: p for p in hard_cases(discover([]), modes=("backward",))}
WARM = dataclasses.replace(FAST, warm_cache=True, memory=False)  # one input copy: one forward


@pytest.mark.parametrize("case_id", sorted(HARD_BACKWARD))
def test_every_backend_gradient_is_stable_on_hard_logits(case_id, worker):
    p = HARD_BACKWARD[case_id]
    record = worker.execute(p.case, WARM, str(p.kernel.folder), str(p.impl.path))
    if record["status"] == "unsupported":
        assert p.case.backend in ("numpy", "numba") and p.case.dtype == "bfloat16"
        return
    assert record["status"] == "ok", record.get("reason") or record
    assert record["accuracy"]["nonfinite"] == 0 and record["accuracy"]["passed"]
    assert [o["name"] for o in record["accuracy"]["outputs"]] == ["d_logits"]


# -- backward: Triton's wide-row and many-chunk paths, forced at small sizes ----------------------
def check_triton_backward(spec, params, mod, inputs) -> None:
    """forward_train + backward on float32 tensors, every gradient within the spec's bound."""
    args = [t64(inputs[k]) if k in spec.integer_inputs else t64(inputs[k]).float()
            for k in spec.inputs]
    seen = {k: (inputs[k] if k in spec.integer_inputs else a.double().numpy())
            for k, a in zip(spec.inputs, args)}
    static = spec.static_kwargs(params)
    out, saved = mod.forward_train(*args, **static)
    (cot,) = cotangent(spec, params, seen)
    g = torch.tensor(cot, dtype=torch.float32)
    grads = mod.backward(saved, g, **static)
    refs = spec.reference_backward(seen, params, (g.double().numpy(),))
    assert len(grads) == len(spec.grad_inputs)
    for name, got, ref in zip(spec.grad_inputs, grads, refs):
        bound = spec.grad_tolerance(params, "float32", name).bound("float32")
        err = compare(name, got.double().numpy(), ref, "float32", bound)
        assert err.passed, (name, err)


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
@pytest.mark.parametrize("wide", [False, True])
def test_triton_norm_backward_paths(kernels, name, wide, monkeypatch):
    """Row tiles shared by fewer programs than tiles (so each loops), and the two-kernel path
    for rows wider than MAX_FUSED_COLS (programs x column chunks, a ragged last chunk)."""
    mod = triton_module(kernels, name)
    if wide:
        monkeypatch.setattr(mod, "MAX_FUSED_COLS", 64)
        monkeypatch.setattr(mod, "CHUNK_COLS", 32)
    monkeypatch.setattr(mod, "programs_for", lambda device, work: min(work, 3))
    spec, params, x = draw(kernels, name, rows=37, hidden=200)
    check_triton_backward(spec, params, mod, x)


def test_triton_cross_entropy_backward_many_chunks(kernels, monkeypatch):
    mod = triton_module(kernels, "cross_entropy")
    monkeypatch.setattr(mod, "MAX_BLOCK_V", 64)
    monkeypatch.setattr(mod, "INTERPRETED_BLOCK_V", 64)
    spec, params, x = draw(kernels, "cross_entropy", n=9, vocab=1000, label_smoothing=0.2,
                           logit_scale=5e3)
    x["logits"][:, 950] += 30.0
    check_triton_backward(spec, params, mod, x)


# -- backward: what each hand-written implementation saves ----------------------------------------
SAVED_PARAMS = {"layer_norm": {"rows": 24, "hidden": 40}, "rms_norm": {"rows": 24, "hidden": 40},
                "cross_entropy": {"n": 24, "vocab": 40}, "focal_loss": {"rows": 24, "classes": 40}}


def expected_saved_bytes(name: str) -> int:
    """The inputs backward reads (4-byte floats, int64 targets) plus 4 bytes per row and
    statistic: mean and rstd, rstd, or the log-sum-exp; nothing for focal loss."""
    r, c = 24, 40
    return {"layer_norm": 4 * (r * c + c) + 2 * 4 * r, "rms_norm": 4 * (r * c + c) + 4 * r,
            "cross_entropy": 4 * r * c + 8 * r + 4 * r, "focal_loss": 2 * 4 * r * c}[name]


@pytest.mark.parametrize("family", ["numpy", "numba", "triton"])
@pytest.mark.parametrize("name", KERNELS)
def test_saved_state_is_what_an_expert_kernel_saves(kernels, name, family):
    from kernbench.backends.base import nbytes

    spec, params, x = draw(kernels, name, **SAVED_PARAMS[name])
    mod = import_backend(kernels[name].folder / f"{name}_{family}.py")
    if family == "triton":
        args = [t64(x[k]) if k in spec.integer_inputs else t64(x[k]).float() for k in spec.inputs]
    else:
        args = [x[k] if k in spec.integer_inputs else f32(x[k]) for k in spec.inputs]
    _, saved = mod.forward_train(*args, **spec.static_kwargs(params))
    assert nbytes(saved) == expected_saved_bytes(name)


# -- backward: plausible wrong gradients fail the tolerance, a correct float32 one passes --------
def grad_passes(spec, params, name, got, ref, dtype="float32") -> bool:
    bound = spec.grad_tolerance(params, dtype, name).bound(dtype)
    return compare(name, round_to(np.asarray(got), dtype), ref, dtype, bound).passed


def test_norm_wrong_gradients_fail(kernels):
    spec, params, x = draw(kernels, "layer_norm", rows=64, hidden=512)
    (g,) = cotangent(spec, params, x)
    dx, dw, db = spec.reference_backward(x, params, (g,))
    xs, w = x["x"], x["weight"]
    mean = xs.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(xs.var(-1, keepdims=True) + params["eps"])
    xhat, dxhat = (xs - mean) * rstd, g * w
    good = rstd * (dxhat - dxhat.mean(-1, keepdims=True)
                   - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    assert grad_passes(spec, params, "x", f32(good), dx)
    assert not grad_passes(spec, params, "x", rstd * dxhat, dx)  # xhat treated as x * const
    assert not grad_passes(spec, params, "x", rstd * (dxhat - dxhat.mean(-1, keepdims=True)), dx)
    assert not grad_passes(spec, params, "weight", (g * (xs - mean)).sum(0), dw)  # not normalised
    assert not grad_passes(spec, params, "weight", (g * xhat).mean(0), dw)  # mean, not sum
    assert not grad_passes(spec, params, "bias", g.sum(0) * (1 + 1e-4), db)
    spec, params, x = draw(kernels, "rms_norm", rows=64, hidden=512)
    (g,) = cotangent(spec, params, x)
    dx, dw = spec.reference_backward(x, params, (g,))
    rstd = 1 / np.sqrt((x["x"] ** 2).mean(-1, keepdims=True) + params["eps"])
    xhat, dxhat = x["x"] * rstd, g * x["weight"]
    assert grad_passes(spec, params, "x", f32(rstd * (dxhat - xhat * (dxhat * xhat).mean(
        -1, keepdims=True))), dx)
    assert not grad_passes(spec, params, "x", rstd * dxhat, dx)
    assert not grad_passes(spec, params, "weight", (g * x["x"]).sum(0), dw)


def test_loss_wrong_gradients_fail(kernels):
    spec, params, x = draw(kernels, "cross_entropy", n=64, vocab=2000, label_smoothing=0.1)
    (g,) = cotangent(spec, params, x)
    (ref,) = spec.reference_backward(x, params, (g,))
    p = scipy.special.softmax(x["logits"], axis=1)
    onehot = np.zeros_like(p)
    onehot[np.arange(64), x["target"]] = 1.0
    scale = float(g) / 64
    assert grad_passes(spec, params, "logits", f32((p - 0.9 * onehot - 0.1 / 2000) * scale), ref)
    assert not grad_passes(spec, params, "logits", (p - onehot) * scale, ref)  # no smoothing
    assert not grad_passes(spec, params, "logits", (p - 0.9 * onehot) * scale, ref)
    assert not grad_passes(spec, params, "logits", (p - 0.9 * onehot - 0.1 / 2000) * float(g),
                           ref)  # the sum's gradient, not the mean's
    spec, params, x = draw(kernels, "focal_loss", rows=256, classes=20, logit_scale=5e3)
    (g,) = cotangent(spec, params, x)
    (ref,) = spec.reference_backward(x, params, (g,))
    z, t = x["logits"], x["targets"]
    sign, alpha_t = 1 - 2 * t, np.where(t == 1, 0.25, 0.75)
    s = scipy.special.expit(sign * x["logits"])  # 1 - p_t
    good = sign * alpha_t * s ** 2 * (2 * (1 - s) * np.logaddexp(0, sign * z) + s)
    scale = float(g) / z.size
    assert grad_passes(spec, params, "logits", f32(good * scale), ref)
    # the modulating factor treated as a constant (detached): only alpha_t s^gamma d ce
    assert not grad_passes(spec, params, "logits", sign * alpha_t * s ** 2 * s * scale, ref)
    assert not grad_passes(spec, params, "logits", -good * scale, ref)  # sign of z forgotten
