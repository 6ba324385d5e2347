"""The accuracy check cannot be passed by a kernel that does nothing useful."""

import math

import numpy as np
import pytest

from kernbench.accuracy import Tolerance, compare, summarize
from kernbench.dtypes import FORMATS, round_to

from .conftest import ROOT

RNG = np.random.default_rng(7)
REF = np.exp(RNG.standard_normal((32, 50)))
BOUND = Tolerance(16).bound("float32")


@pytest.mark.parametrize("bad", [
    np.zeros_like(REF),
    np.full_like(REF, REF.mean()),
    np.full_like(REF, np.nan),
    np.where(RNG.random(REF.shape) < 0.01, np.nan, REF),
    np.where(RNG.random(REF.shape) < 0.01, np.inf, REF),
    REF * (1 + 1e-3),
    np.log(REF),  # "the input itself" for an exp-like kernel
])
def test_wrong_outputs_fail(bad):
    err = compare("out", bad, REF, "float32", BOUND)
    assert not err.passed
    assert err.reason


def test_shape_mismatch_fails():
    assert not compare("out", REF[:, :-1], REF, "float32", BOUND).passed


def test_float32_rounding_passes_and_is_measured_in_ulps():
    out = REF.astype(np.float32).astype(np.float64)
    err = compare("out", out, REF, "float32", BOUND)
    assert err.passed
    assert 0 < err.max_ulp <= 0.5 + 1e-9  # round-to-nearest is within half an ULP
    assert err.rel_l2 < 2 ** -24


def test_matching_infinities_are_exact():
    ref = np.array([1.0, np.inf, -np.inf])
    assert compare("out", ref.copy(), ref, "float32", BOUND).passed


def test_ulp_matches_numpy_spacing():
    x = np.abs(RNG.standard_normal(1000)) * 10.0 ** RNG.integers(-30, 30, 1000)
    for name in ("float32", "float64", "float16"):
        with np.errstate(over="ignore"):
            xs = x.astype(name)
        finite = np.isfinite(xs) & (xs > 0)
        expected = np.spacing(xs[finite]).astype(np.float64)
        got = FORMATS[name].ulp(xs[finite].astype(np.float64))
        np.testing.assert_array_equal(got, expected)


def test_bfloat16_rounding_matches_torch():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal(10000) * 10.0 ** RNG.integers(-5, 5, 10000)
    expected = torch.from_numpy(x.astype(np.float32)).to(torch.bfloat16).double().numpy()
    np.testing.assert_array_equal(round_to(x, "bfloat16"), expected)


def test_summary_reports_worst_output():
    good = compare("a", REF, REF, "float32", BOUND)
    bad = compare("b", REF * 2, REF, "float32", BOUND)
    s = summarize([good, bad])
    assert not s["passed"] and s["worst_output"] == "b"
    assert [o["name"] for o in s["outputs"]] == ["a", "b"]
    assert math.isclose(s["rel_l2"], 1.0)


@pytest.mark.parametrize("wrong", [2.0, -np.inf, np.nan, 0.0])
def test_a_special_reference_value_must_be_matched(wrong):
    """Where the reference is +inf (or NaN) a finite value, the other infinity or a NaN is a
    wrong answer; before, those positions were left out of every figure and the case passed."""
    ref = np.array([1.0, np.inf, np.nan])
    out = np.array([1.0, wrong, np.nan])
    e = compare("y", out, ref, "float32", 1e-6)
    assert not e.passed and "differ where the reference is inf or NaN" in e.reason
    assert compare("y", np.array([1.0, np.inf, np.nan]), ref, "float32", 1e-6).passed


def test_ulp_is_exact_just_below_a_power_of_two():
    """floor(log2(x)) reads 2**k - 2**(k-53) as exponent k (log2 rounds up to k): the ULP of
    such a float64 came out twice np.spacing's."""
    x = np.nextafter(2.0 ** np.arange(-40, 40), 0.0)
    np.testing.assert_array_equal(FORMATS["float64"].ulp(x), np.spacing(x))


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_figures_over_many_slices_match_whole_array_formulas(threads):
    """compare walks the arrays in CHUNK_ELEMENTS slices, in one thread or several; its figures
    must be the whole arrays' (computed here directly, from np.linalg.norm and np.spacing),
    whichever slice holds the worst element, and the same for any number of threads."""
    from kernbench.accuracy import CHUNK_ELEMENTS

    rng = np.random.default_rng(3)
    n = 5 * (2 * CHUNK_ELEMENTS // 5 + 9999)  # three slices, the last one ragged
    ref = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 3, n)
    out = (ref * (1 + 2e-7 * rng.standard_normal(n))).astype(np.float32).astype(np.float64)
    out[n - 7] += 1e-3  # the worst element, in the ragged last slice
    err = compare("out", out.reshape(-1, 5), ref.reshape(-1, 5), "float32", 1.0,
                  threads=threads)
    assert err == compare("out", out, ref, "float32", 1.0)  # bit for bit: sums in slice order
    diff = np.abs(out - ref)
    assert math.isclose(err.rel_l2, np.linalg.norm(out - ref) / np.linalg.norm(ref), rel_tol=1e-12)
    assert err.max_abs == diff.max() == diff[n - 7]
    spacing = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert math.isclose(err.max_ulp, (diff / spacing).max(), rel_tol=1e-12)


@pytest.mark.parametrize("threads", [1, 3])
def test_a_nan_in_a_later_slice_is_not_lost(threads):
    from kernbench.accuracy import CHUNK_ELEMENTS

    ref = np.ones(3 * CHUNK_ELEMENTS)
    ref[CHUNK_ELEMENTS + 5] = np.inf  # matched: exact, in another thread's slice
    out = ref.copy()
    out[2 * CHUNK_ELEMENTS + 1] = np.nan
    err = compare("out", out, ref, "float32", 1.0, threads=threads)
    assert not err.passed and err.nonfinite == 1
    assert math.isnan(err.max_abs) and err.max_ulp == math.inf


@pytest.mark.parametrize("mode", ["forward", "backward"])
def test_the_worker_compares_in_the_runs_threads(monkeypatch, mode):
    """Outputs and gradients are compared in the run's threads (outside the timed region)."""
    from kernbench import accuracy, worker
    from kernbench.case import Case, CaseSettings

    seen = []
    real = accuracy.compare

    def spy(*args, threads=1, **kwargs):
        seen.append(threads)
        return real(*args, threads=threads, **kwargs)

    monkeypatch.setattr(accuracy, "compare", spy)
    case = Case("softmax", "torch_eager", "", "cpu", "float32", mode,
                (("rows", 4), ("cols", 8)))
    record = worker.Worker(3).execute(case, CaseSettings(budget_s=0.01, min_samples=1,
                                                         warmup_s=0.0, memory=False),
                                      str(ROOT / "kernels" / "softmax"),
                                      str(ROOT / "kernels" / "softmax" / "softmax_torch.py"))
    assert record["status"] == "ok", record.get("reason")
    assert seen and set(seen) == {3}
