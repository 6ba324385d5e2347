"""Norms and losses (layer_norm, rms_norm, cross_entropy, focal_loss): each float64 reference
against an independent implementation on fresh inputs (torch.nn.functional in float64, scipy,
mpmath), the hard inputs (logits of +-1e4) through every backend, and plausible wrong kernels
failing the spec's tolerance while a correct float32 one passes."""

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


def hard_cases(kernels):
    """Every implementation in float32 and bfloat16; torch.compile in float32 only (its code is
    generated from the same torch files, and each compile costs seconds)."""
    def suite(backends, dtypes):
        data = {"suite": {"backends": backends, "dtypes": dtypes},
                "kernels": {name: {"cases": [params]} for name, params in HARD.items()}}
        return build_suite(data, kernels, "hard-inputs").cases

    return (suite(["numpy", "numba", "torch_eager", "jax_jit", "triton"],
                  ["float32", "bfloat16"]) + suite(["torch_compile"], ["float32"]))


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
