"""The gate's statistics and verdicts (kernbench.compare) on synthetic runs with known ratios.

Samples are drawn with a seeded NumPy generator, so every verdict here is deterministic; the rank
distributions and intervals are checked against brute-force enumeration and scipy, independent
of the code under test."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from kernbench.compare import (
    FAILING,
    GatePolicy,
    _mann_whitney_cdf,
    _signed_rank_cdf,
    benjamini_hochberg,
    compare,
    compare_runs,
    paired,
    two_sample,
)
from kernbench.results import RunFile

from .conftest import case_record

FP = "fp0"


def header(fingerprint: str = FP, kernels: dict | None = None, **extra) -> dict:
    h = {"type": "run", "schema": 1, "suite": "synthetic", "fingerprint": fingerprint,
         "settings": {"threads": 2, "allocator": "x"}, "machine": {"cpu": "cpu", "cores": 2},
         "software": {"numpy": "1"}}
    if kernels is not None:
        h["kernels"] = {k: {"code_hash": v} for k, v in kernels.items()}
    h.update(extra)
    return h


def case(cid: str, samples=None, status: str = "ok", **extra) -> dict:
    return case_record(cid, samples, status, per_sample_calls=10, **extra)


def run(cases: list[dict], path: str = "run.jsonl", **h) -> RunFile:
    return RunFile(path, header(**h), cases)


def noisy(rng, n: int, scale: float, sigma: float) -> np.ndarray:
    return scale * np.exp(rng.normal(0.0, sigma, n))


def by_id(comparisons):
    return {c.id: c for c in comparisons}


# -- rank statistics against enumeration and scipy ---------------------------------------------
@pytest.mark.parametrize("m,n", [(1, 1), (2, 3), (3, 4), (4, 4), (3, 6)])
def test_mann_whitney_null_matches_enumeration(m, n):
    counts = np.zeros(m * n + 1)
    for xs in itertools.combinations(range(m + n), m):
        ys = [i for i in range(m + n) if i not in xs]
        counts[sum(y > x for x in xs for y in ys)] += 1
    np.testing.assert_allclose(_mann_whitney_cdf(m, n), np.cumsum(counts) / counts.sum(),
                               atol=1e-12)


@pytest.mark.parametrize("n", [1, 3, 6, 9])
def test_signed_rank_null_matches_enumeration(n):
    counts = np.zeros(n * (n + 1) // 2 + 1)
    for signs in itertools.product((0, 1), repeat=n):
        counts[sum(k + 1 for k, s in enumerate(signs) if s)] += 1
    np.testing.assert_allclose(_signed_rank_cdf(n), np.cumsum(counts) / counts.sum(), atol=1e-12)


@pytest.mark.parametrize("m,n", [(7, 9), (20, 20), (80, 60)])  # exact and normal paths
def test_two_sample_interval_is_dual_to_scipy_mann_whitney(m, n):
    rng = np.random.default_rng(m * n)
    x, y = noisy(rng, m, 1.0, 0.1), noisy(rng, n, 1.06, 0.1)
    s = two_sample(x, y)
    method = "exact" if m * n <= 2500 else "asymptotic"
    for delta in (0.0, 0.02):
        want = stats.mannwhitneyu(np.log(y) - delta, np.log(x), alternative="greater",
                                  method=method, use_continuity=True).pvalue
        assert s.level_excluding(delta, "above") / 2 == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert s.estimate == pytest.approx(np.median(np.subtract.outer(np.log(y), np.log(x))))


def test_paired_interval_is_dual_to_scipy_wilcoxon():
    rng = np.random.default_rng(3)
    a = noisy(rng, 25, 1.0, 0.3)
    b = a * np.exp(0.05 + rng.normal(0, 0.05, 25))
    s = paired(a, b)
    want = stats.wilcoxon(np.log(b) - np.log(a), alternative="greater", method="exact").pvalue
    assert s.level_excluding(0.0, "above") / 2 == pytest.approx(want, rel=1e-6)


def test_interval_coverage_near_nominal():
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(300):
        lo, hi = two_sample(noisy(rng, 8, 1.0, 0.2), noisy(rng, 9, math.exp(0.1), 0.2)).interval(
            0.05)
        hits += lo <= 0.1 <= hi
    assert 0.92 <= hits / 300 <= 0.99


def test_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, 0.20, 0.001]
    mask, r = benjamini_hochberg(p, 0.05)
    # sorted: 0.001 (<=0.01), 0.01 (<=0.02), 0.03 (<=0.03), 0.04 (>0.04? no: 0.04<=0.04), 0.2
    assert r == 4
    assert mask.tolist() == [True, True, True, False, True]
    assert benjamini_hochberg([0.5, 0.9], 0.05)[1] == 0


# -- timing verdicts ------------------------------------------------------------------------
def test_aa_gives_no_regression():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        ids = [f"k{i % 3}/numpy/cpu/float32/forward/n={i}" for i in range(20)]
        base = run([case(i, noisy(rng, 30, 1e-3, 0.05)) for i in ids])
        cur = run([case(i, noisy(rng, 30, 1e-3, 0.05)) for i in ids])
        verdicts = [c.verdict for c in compare_runs(base, cur)]
        assert "regression" not in verdicts and "failed" not in verdicts


def test_a_25_percent_slowdown_with_modest_noise_is_caught():
    rng = np.random.default_rng(1)
    ids = [f"k{i % 2}/numpy/cpu/float32/forward/n={i}" for i in range(8)]
    slow = ids[0]
    base = run([case(i, noisy(rng, 30, 2e-3, 0.05)) for i in ids])
    cur = run([case(i, noisy(rng, 30, 2e-3 * (1.25 if i == slow else 1.0), 0.05)) for i in ids])
    c = by_id(compare_runs(base, cur))[slow]
    assert c.verdict == "regression"
    assert c.ci[0] > 1.10 and c.ci[0] <= 1.25 <= c.ci[1]
    assert c.ratio == pytest.approx(1.25, rel=0.05)
    assert c.failing and slow in c.line() and "REGRESSION" in c.line()
    others = [x.verdict for x in compare_runs(base, cur) if x.id != slow]
    assert "regression" not in others


def test_an_improvement_is_reported_and_does_not_fail():
    rng = np.random.default_rng(2)
    base = run([case("k/numpy/cpu/float32/forward/n=1", noisy(rng, 40, 1e-3, 0.03))])
    cur = run([case("k/numpy/cpu/float32/forward/n=1", noisy(rng, 40, 0.7e-3, 0.03))])
    c = compare_runs(base, cur)[0]
    assert c.verdict == "improvement" and not c.failing


def test_pure_noise_with_few_samples_is_inconclusive_not_a_regression():
    rng = np.random.default_rng(4)
    base = run([case("k/numpy/cpu/float32/forward/n=1", noisy(rng, 5, 1e-3, 0.5))])
    cur = run([case("k/numpy/cpu/float32/forward/n=1", noisy(rng, 5, 1.3e-3, 0.5))])
    c = compare_runs(base, cur)[0]
    assert c.verdict == "inconclusive"
    assert c.threshold > 0.3  # the floor rose to the case's noise


def test_tiny_iqr_and_a_small_shift_is_same_not_a_regression():
    # the classic cry-wolf: a 3% shift is hugely significant with 0.1% noise, and irrelevant
    rng = np.random.default_rng(5)
    base = run([case("k/numpy/cpu/float32/forward/n=1", noisy(rng, 200, 1e-3, 0.001))])
    cur = run([case("k/numpy/cpu/float32/forward/n=1", noisy(rng, 200, 1.03e-3, 0.001))])
    assert compare_runs(base, cur)[0].verdict == "same"
    within = compare_runs(base, cur, GatePolicy(min_drift=0.0))[0]  # within-run noise only
    assert within.verdict == "same"
    assert within.ci[0] > 1.02  # it *is* slower, provably, just by less than the threshold


def test_noise_floor_is_the_standard_error_of_the_ratio():
    # a suite asking for 1% on a case whose ratio is only known to ~4% gets its threshold raised
    rng = np.random.default_rng(6)
    sigma, n = 0.15, 30
    base = run([case("k/numpy/cpu/float32/forward/n=1", noisy(rng, n, 1e-3, sigma))])
    cur = run([case("k/numpy/cpu/float32/forward/n=1", noisy(rng, n, 1e-3, sigma))])
    c = compare_runs(base, cur, GatePolicy(per_kernel={"k": 0.01}))[0]
    # Hodges-Lehmann's standard error for normal data: sigma * sqrt(2/n) * sqrt(pi/3)
    assert c.noise == pytest.approx(sigma * math.sqrt(2 / n * math.pi / 3), rel=0.35)
    assert c.threshold == pytest.approx(math.expm1(c.noise)) and c.threshold > 0.02
    assert "noise floor" in c.line()
    assert c.verdict != "same"  # never "same" at a threshold the case cannot resolve
    plain = compare_runs(base, cur, GatePolicy(per_kernel={"k": 0.01}, noise_floor=0.0))[0]
    assert plain.threshold == pytest.approx(0.01)


def test_noisy_samples_do_not_raise_the_floor_when_the_ratio_is_precise():
    # paired A/B under heavy load: each pair is noisy, a hundred pairs pin the ratio down
    rng = np.random.default_rng(8)
    load = np.exp(rng.normal(0, 0.5, 100))
    a = 1e-3 * load * np.exp(rng.normal(0, 0.3, 100))
    b = 1.25e-3 * load * np.exp(rng.normal(0, 0.3, 100))
    cid = "k/numpy/cpu/float32/forward/n=1"
    base, cur = run([case(cid, a)], ab={"id": "y"}), run([case(cid, b)], ab={"id": "y"})
    for rec, side in ((base.cases[0], "base"), (cur.cases[0], "head")):
        rec["time"]["pair"] = {"ab_id": "y", "side": side}
    c = compare_runs(base, cur)[0]
    assert c.paired and c.threshold < 0.12 and c.verdict == "regression"


def test_fdr_control_widens_discovery_intervals():
    rng = np.random.default_rng(7)
    ids = [f"k/numpy/cpu/float32/forward/n={i}" for i in range(40)]
    base = run([case(i, noisy(rng, 30, 1e-3, 0.05)) for i in ids])
    cur = run([case(i, noisy(rng, 30, 1e-3 * (1.4 if i == ids[0] else 1), 0.05)) for i in ids])
    c = by_id(compare_runs(base, cur))[ids[0]]
    assert c.verdict == "regression"
    assert c.ci_level == pytest.approx(1 - 0.05 * 1 / 40)  # R = 1 discovery among m = 40


def _drift_runs(rng, changed_factor: float, drift: float):
    """Six control cases (kernel `ctl`, unchanged code) and four of kernel `chg` (changed),
    every case shifted by its own run-to-run drift."""
    ids = [f"ctl/numpy/cpu/float32/forward/n={i}" for i in range(6)]
    ids += [f"chg/numpy/cpu/float32/forward/n={i}" for i in range(4)]
    base = run([case(i, noisy(rng, 40, 1e-3, 0.02)) for i in ids],
               kernels={"ctl": "h1", "chg": "h2"})
    cur = []
    for i in ids:
        factor = math.exp(rng.normal(0, drift)) * (changed_factor if i.startswith("chg") else 1)
        cur.append(case(i, noisy(rng, 40, 1e-3 * factor, 0.02)))
    return base, run(cur, kernels={"ctl": "h1", "chg": "h3"})


def test_between_run_drift_from_controls_prevents_false_alarms():
    false_with, false_without = 0, 0
    for seed in range(10):
        base, cur = _drift_runs(np.random.default_rng(seed), 1.0, drift=0.10)
        false_with += sum(c.verdict == "regression" for c in compare_runs(base, cur))
        false_without += sum(c.verdict == "regression"
                             for c in compare_runs(base, cur, GatePolicy(drift=False)))
    assert false_with == 0
    assert false_without > 0  # the within-run samples alone cry wolf


def test_a_burst_of_drift_in_one_worker_group_is_not_a_change():
    # seen on this machine in an A/A pair: 9 cases within 10%, the 3 torch cases (one worker,
    # one burst of load) 2.5x faster in the second run
    rng = np.random.default_rng(13)
    ids = [f"k/{'torch_eager' if i < 3 else 'numpy'}/cpu/float32/forward/n={i}"
           for i in range(12)]
    base = run([case(i, noisy(rng, 40, 1e-3, 0.05)) for i in ids], kernels={"k": "h"})
    cur = run([case(i, noisy(rng, 40, 1e-3 * (0.4 if "torch" in i else
                                               math.exp(rng.normal(0, 0.04))), 0.05))
               for i in ids], kernels={"k": "h"})
    verdicts = [c.verdict for c in compare_runs(base, cur)]
    assert "regression" not in verdicts and "improvement" not in verdicts


def test_stored_runs_assume_a_minimum_drift():
    # controls that agree exactly (tick-quantised times) must not make a drifted case "same"
    rng = np.random.default_rng(16)
    ids = [f"ctl/numpy/cpu/float32/forward/n={i}" for i in range(6)]
    chg = "chg/numpy/cpu/float32/forward/n=1"
    tick = np.full(40, 8e-3)
    base = run([case(i, tick) for i in ids] + [case(chg, noisy(rng, 20, 1e-4, 0.12))],
               kernels={"ctl": "a", "chg": "b"})
    cur = run([case(i, tick) for i in ids] + [case(chg, noisy(rng, 20, 1e-4, 0.12))],
              kernels={"ctl": "a", "chg": "c"})
    result = compare(base, cur)
    c = by_id(result.comparisons)[chg]
    assert result.drift == pytest.approx(0.03) and c.verdict == "inconclusive"
    assert any("taken as 3%" in n for n in result.notes)
    assert by_id(compare_runs(base, cur, GatePolicy(min_drift=0.0)))[chg].verdict == "same"


def test_changed_kernels_do_not_inflate_the_drift_estimate():
    base, cur = _drift_runs(np.random.default_rng(1), 1.35, drift=0.01)
    result = compare(base, cur)
    assert result.drift is not None and result.drift < 0.05
    slow = [c for c in result.comparisons if c.kernel == "chg"]
    assert all(c.verdict == "regression" for c in slow)
    assert any("4 cases" not in n and "6 cases of unchanged kernels" in n for n in result.notes)


def test_paired_ab_cancels_drift_that_unpaired_cannot():
    rng = np.random.default_rng(9)
    load = np.exp(rng.normal(0, 0.4, 30))  # each pair's machine state, shared by A and B
    a = 1e-3 * load * np.exp(rng.normal(0, 0.01, 30))
    b = 1.25e-3 * load * np.exp(rng.normal(0, 0.01, 30))
    cid = "k/numpy/cpu/float32/forward/n=1"

    def side(samples, name):
        rec = case(cid, samples)
        rec["time"]["pair"] = {"ab_id": "x", "side": name}
        return rec

    base = run([side(a, "base")], ab={"id": "x", "side": "base"})
    cur = run([side(b, "head")], ab={"id": "x", "side": "head"})
    result = compare(base, cur)
    c = result.comparisons[0]
    assert result.mode == "paired" and c.paired
    assert c.verdict == "regression" and c.ratio == pytest.approx(1.25, rel=0.02)
    unpaired = compare(run([case(cid, a)]), run([case(cid, b)]))
    assert unpaired.mode == "stored" and unpaired.comparisons[0].verdict != "regression"


def test_ab_cases_of_unchanged_kernels_are_not_tested():
    rng = np.random.default_rng(10)
    ids = {"chg": "chg/numpy/cpu/float32/forward/n=1", "ctl": "ctl/numpy/cpu/float32/forward/n=1"}
    factor = {"chg": 1.3, "ctl": 1.2}  # ctl: an A/B artifact on identical code

    def side(name, hashes):
        cases = []
        for k, cid in ids.items():
            s = 1e-3 * np.exp(rng.normal(0, 0.01, 40)) * (factor[k] if name == "head" else 1)
            rec = case(cid, s)
            rec["time"]["pair"] = {"ab_id": "z", "side": name}
            cases.append(rec)
        return run(cases, ab={"id": "z", "side": name}, kernels=hashes)

    base = side("base", {"chg": "a", "ctl": "c"})
    head = side("head", {"chg": "b", "ctl": "c"})
    v = by_id(compare_runs(base, head))
    assert v[ids["chg"]].verdict == "regression"
    assert v[ids["chg"]].ci_level == pytest.approx(0.95)  # one discovery among m = 1 tested
    assert v[ids["ctl"]].verdict == "inconclusive" and "A/B artifact" in v[ids["ctl"]].line()
    strict = by_id(compare_runs(base, head, GatePolicy(trust_code_hash=False)))
    assert strict[ids["ctl"]].verdict == "regression"


# -- thresholds ----------------------------------------------------------------------------------
def test_threshold_resolution_order():
    gate = {"gate": {"threshold": 0.2, "kernels": {"softmax": 0.3}}}
    assert GatePolicy().threshold_for("softmax", gate) == 0.3
    assert GatePolicy().threshold_for("matmul", gate) == 0.2
    assert GatePolicy().threshold_for("matmul", {}) == 0.10
    assert GatePolicy(per_kernel={"softmax": 0.05}).threshold_for("softmax", gate) == 0.05
    assert GatePolicy(threshold=0.15, use_suite_thresholds=False).threshold_for(
        "softmax", gate) == 0.15


def test_suite_threshold_from_the_current_header_changes_the_verdict():
    rng = np.random.default_rng(12)
    cid = "k/numpy/cpu/float32/forward/n=1"
    base = run([case(cid, noisy(rng, 60, 1e-3, 0.01))])
    samples = noisy(rng, 60, 1.2e-3, 0.01)
    assert compare_runs(base, run([case(cid, samples)]))[0].verdict == "regression"
    loose = run([case(cid, samples)], gate={"threshold": None, "kernels": {"k": 0.3}})
    assert compare_runs(base, loose)[0].verdict == "same"


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        GatePolicy(alpha=0)
    with pytest.raises(ValueError):
        GatePolicy(threshold=-0.1)
    with pytest.raises(ValueError):
        GatePolicy(memory_ratio=0.5)


# -- exact gates -----------------------------------------------------------------------------
def _pair(b_extra=None, c_extra=None, b_status="ok", c_status="ok"):
    rng = np.random.default_rng(0)
    cid = "softmax/torch_compile/cpu/float32/forward/rows=64"
    s = noisy(rng, 20, 1e-3, 0.01)
    b = case(cid, s, b_status, **(b_extra or {}))
    c = case(cid, s, c_status, **(c_extra or {}))
    return compare_runs(run([b]), run([c]))[0]


@pytest.mark.parametrize("status", ["failed", "crashed", "timeout"])
def test_ok_to_failing_status_fails_naming_the_case(status):
    c = _pair(c_status=status, c_extra={"reason": "boom"})
    assert c.verdict == "failed" and c.failing
    assert c.id in c.line() and f"was ok, now {status}: boom" in c.line()


def test_accuracy_loss_fails():
    c = _pair(c_status="failed", c_extra={
        "reason": "inaccurate: output out: rel_l2 0.1 > tolerance 2e-06",
        "accuracy": {"rel_l2": 0.1, "tolerance": 2e-6, "passed": False}})
    assert c.verdict == "failed" and "inaccurate" in c.line()


def test_accuracy_growth_within_tolerance_fails():
    c = _pair(c_extra={"accuracy": {"rel_l2": 1.5e-6, "tolerance": 2e-6, "passed": True}})
    assert c.verdict == "failed" and "rel_l2 grew" in c.line()
    ok = _pair(c_extra={"accuracy": {"rel_l2": 5e-7, "tolerance": 2e-6, "passed": True}})
    assert ok.verdict != "failed"


def test_accuracy_growth_from_an_exact_baseline_uses_a_floor():
    exact = {"accuracy": {"rel_l2": 0.0, "tolerance": 2e-6, "passed": True}}
    tiny = _pair(exact, {"accuracy": {"rel_l2": 1e-9, "tolerance": 2e-6, "passed": True}})
    assert tiny.verdict != "failed"
    big = _pair(exact, {"accuracy": {"rel_l2": 1e-6, "tolerance": 2e-6, "passed": True}})
    assert big.verdict == "failed"


@pytest.mark.parametrize("key", ["recompiles", "graph_breaks"])
def test_compile_counters_that_rise_fail(key):
    base = {"compile": {"recompiles": 0, "graph_breaks": 0}}
    c = _pair(base, {"compile": {"recompiles": 0, "graph_breaks": 0, key: 2}})
    assert c.verdict == "failed" and "rose 0 -> 2" in c.line()
    assert _pair(base, base).verdict != "failed"


def test_memory_growth_fails_beyond_ratio_and_slack():
    b = {"memory": {"peak_bytes": 10 << 20, "method": "tracemalloc"}}
    up = _pair(b, {"memory": {"peak_bytes": 14 << 20, "method": "tracemalloc"}})
    assert up.verdict == "failed" and "peak memory rose" in up.line()
    within = _pair(b, {"memory": {"peak_bytes": 12 << 20, "method": "tracemalloc"}})
    assert within.verdict != "failed"
    rss = {"memory": {"peak_bytes": 0, "method": "rss"}}
    pages = _pair(rss, {"memory": {"peak_bytes": 4 << 20, "method": "rss"}})
    assert pages.verdict != "failed"  # RSS granularity, not a regression


def test_new_missing_and_status_changes():
    rng = np.random.default_rng(0)
    s = noisy(rng, 10, 1e-3, 0.01)
    base = run([case("a/numpy/cpu/float32/forward/n=1", s),
                case("b/numpy/cpu/float32/forward/n=1", s),
                case("c/numpy/cpu/float32/forward/n=1", None, "failed", reason="x"),
                case("d/numpy/cpu/float32/forward/n=1", s)])
    cur = run([case("a/numpy/cpu/float32/forward/n=1", s),
               case("c/numpy/cpu/float32/forward/n=1", s),
               case("d/numpy/cpu/float32/forward/n=1", None, "skipped", reason="no torch"),
               case("e/numpy/cpu/float32/forward/n=1", s),
               case("f/numpy/cpu/float32/forward/n=1", None, "crashed", reason="SIGSEGV")])
    v = {c.id.split("/")[0]: c.verdict for c in compare_runs(base, cur)}
    assert v == {"a": "same", "b": "missing", "c": "improvement", "d": "missing", "e": "new",
                 "f": "failed"}


def test_interpreted_cases_are_not_timed():
    rng = np.random.default_rng(0)
    cid = "softmax/triton/cpu/float32/forward/n=1"
    base = run([case(cid, noisy(rng, 10, 1e-3, 0.01), flags=["interpreted"])])
    cur = run([case(cid, noisy(rng, 10, 5e-3, 0.01), flags=["interpreted"])])
    c = compare_runs(base, cur)[0]
    assert c.verdict == "inconclusive" and c.ratio is None and "interpreted" in c.line()


def test_foreign_fingerprint_refuses_timing_but_keeps_status_gates():
    rng = np.random.default_rng(0)
    s = noisy(rng, 20, 1e-3, 0.01)
    base = run([case("a/numpy/cpu/float32/forward/n=1", s),
                case("b/numpy/cpu/float32/forward/n=1", s)])
    cur = run([case("a/numpy/cpu/float32/forward/n=1", s * 2),
               case("b/numpy/cpu/float32/forward/n=1", None, "crashed", reason="SIGSEGV")],
              fingerprint="other")
    result = compare(base, cur)
    assert not result.comparable and "fingerprints differ" in result.notes[0]
    v = by_id(result.comparisons)
    assert v["a/numpy/cpu/float32/forward/n=1"].verdict == "inconclusive"
    assert v["b/numpy/cpu/float32/forward/n=1"].verdict == "failed"
    allowed = compare(base, cur, GatePolicy(allow_foreign=True))
    assert allowed.comparable
    assert by_id(allowed.comparisons)["a/numpy/cpu/float32/forward/n=1"].verdict == "regression"


def test_failing_verdicts_are_exactly_regression_and_failed():
    assert set(FAILING) == {"regression", "failed"}
