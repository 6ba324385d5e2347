"""Verdicts for a current run against a baseline: the logic shared by `kernbench gate` and the
HTML report's compare mode. Pure NumPy and the standard library; it reads result records only.

Why not a bare percentage or a bare test (what existing tools do, and why their users complain):

- A percentage on one statistic (pytest-benchmark's `--benchmark-compare-fail=min:5%`) has no
  notion of noise: on a shared 2-core VM, where 10-30% run-to-run noise is normal, it cries wolf.
- A test alone (asv's Mann-Whitney before its factor check; gbench's U test) makes any shift
  "significant" once a case has many samples and a tiny IQR, and within-run samples never see the
  drift *between* two jobs (another tenant, a slower host, a different memory layout), which is
  usually the larger noise. Too few samples, on the other hand, make a test blind.

So a timing verdict here needs an interval, a threshold, and an honest noise model:

1. Per case, the Hodges-Lehmann estimate of the shift in log time (the log of the ratio of
   medians under a multiplicative-shift model), with its distribution-free confidence interval
   from the rank test's null distribution (exact for small samples, normal beyond): two-sample
   (Mann-Whitney) for a stored baseline, one-sample on the paired log ratios (Wilcoxon signed
   rank) for an interleaved A/B run, where drift between jobs cancels pair by pair.
2. Stored-baseline mode widens each interval by the between-run drift, estimated from the
   cross-case spread of the log ratios of *control* cases, those whose kernel code did not change
   (the run header's code hashes): what moved there was the machine, not the code. (Using changed
   cases too would let a real, widespread regression hide itself by inflating the drift.) Two
   jobs are never assumed closer than MIN_DRIFT.
3. A threshold per suite and per kernel (suite TOML `gate_threshold`), raised to a floor of
   NOISE_FLOOR times the case's measured noise: how far its ratio moves from run to run, i.e.
   the standard error of its estimate (half its 68% interval) combined with the between-run
   drift. A case is not asked to resolve a change smaller than its own reproducibility, and
   `same` is never claimed with a threshold the case cannot support. (Not the spread of single
   samples: a first version used it, and under heavy load the floor rose past 100% in A/B mode,
   where a hundred pairs pin the ratio down to a few percent however noisy each pair is.)
4. Regression only when the whole interval lies above the threshold band, improvement when it
   lies below, `same` when it lies within, `inconclusive` otherwise (never a failure).
   Across cases the false discovery rate is held at `alpha` (Benjamini-Hochberg on the p-values
   of "the change exceeds the band"), and a discovery's interval is reported at the matching
   false-coverage-adjusted level 1 - R*alpha/m (Benjamini-Yekutieli 2005), so "the interval lies
   beyond the threshold" and "BH selected it" are the same statement. In an A/B run, cases of
   kernels whose code hash is the same on both sides run identical code under one harness in
   one process: they are left out of that family (any difference there is noise or an A/B
   artifact), which spends the error budget where the code changed.

Exact gates need no statistics: a case that was ok and now fails, crashes or times out;
accuracy that left tolerance or grew by more than `accuracy_growth` over the baseline's error;
torch.compile recompiles or graph breaks that rose; peak memory that rose beyond
`memory_ratio` (plus a slack for the measurement method's granularity).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from .results import RunFile, latest_by_id

__all__ = ["VERDICTS", "FAILING", "GatePolicy", "Comparison", "GateResult", "compare",
           "compare_runs", "comparability", "ShiftInterval", "two_sample", "paired",
           "benjamini_hochberg"]

VERDICTS = ("regression", "improvement", "same", "inconclusive", "failed", "new", "missing")
#: Verdicts that fail the build.
FAILING = ("regression", "failed")

#: The threshold is at least this multiple of the case's noise: the run-to-run standard error
#: of its log ratio (within-run standard error and between-run drift, in quadrature).
NOISE_FLOOR = 1.0
#: Two-sided level of the interval whose half-width is one standard error.
ONE_SIGMA = 0.3173
#: Fewest control cases (unchanged kernel code) from which the between-run drift is estimated.
MIN_CONTROLS = 5
#: Two separate jobs are never assumed closer than this (SD of log time), whatever the controls
#: say: controls can look identical while the changed cases drifted (seen here with 2 threads
#: under load: multithreaded controls stalled to whole 4 ms scheduler ticks in both runs, ratio
#: exactly 1, while a single-threaded case drifted 13% and was wrongly called `same`).
MIN_DRIFT = 0.03
#: Fewest samples per side for a timing verdict.
MIN_SAMPLES = 3
#: Above this many pairwise estimates the rank statistics' null is taken as normal.
EXACT_MAX_TWO_SAMPLE = 2500
EXACT_MAX_SIGNED_RANK = 200
#: A baseline error below this fraction of the tolerance counts as this fraction, so growth
#: "from zero" (an exact kernel) is judged against something meaningful.
ACCURACY_FLOOR_FRACTION = 0.01
#: Peak-memory changes smaller than this are the method's granularity, not a regression:
#: RSS moves in pages (2 MiB huge pages with the default allocator setting).
MEMORY_SLACK_BYTES = {"rss": 16 << 20}
DEFAULT_MEMORY_SLACK = 1 << 20
FAILING_STATUSES = ("failed", "crashed", "timeout")
#: The smallest level (p-value) resolved: below it, the normal quantiles run out of precision.
MIN_LEVEL = 1e-12
NOT_RUN_STATUSES = ("skipped", "unsupported")
_NORMAL = NormalDist()


# -- policy and results ---------------------------------------------------------------------
@dataclass(frozen=True)
class GatePolicy:
    """How strict the gate is. `threshold` is a relative slowdown (0.10: 10% slower); it applies
    where neither `per_kernel` nor the run's suite (`gate_threshold`) sets one."""

    threshold: float = 0.10
    alpha: float = 0.05
    accuracy_growth: float = 10.0
    memory_ratio: float = 1.25
    per_kernel: dict[str, float] = field(default_factory=dict)
    allow_foreign: bool = False
    #: use the thresholds the current run's suite recorded in its header (`gate` key)
    use_suite_thresholds: bool = True
    #: multiple of the case's own noise below which the threshold never goes
    noise_floor: float = NOISE_FLOOR
    #: estimate between-run drift from unchanged cases (stored-baseline mode)
    drift: bool = True
    #: A/B mode: cases of kernels whose code hash is the same on both sides run identical code
    #: under one harness in one process, so they are not tested for a change (the FDR family is
    #: the changed kernels' cases). False tests every case, as for two separate runs.
    trust_code_hash: bool = True
    #: stored-baseline mode: the least between-run drift (SD of log time) assumed, whatever the
    #: controls say
    min_drift: float = MIN_DRIFT

    def __post_init__(self) -> None:
        checks = [("threshold", self.threshold, 0.0, math.inf), ("alpha", self.alpha, 0.0, 1.0),
                  ("accuracy_growth", self.accuracy_growth, 1.0, math.inf),
                  ("memory_ratio", self.memory_ratio, 1.0, math.inf),
                  ("noise_floor", self.noise_floor, 0.0, math.inf),
                  ("min_drift", self.min_drift, 0.0, math.inf)]
        checks += [(f"per_kernel[{k}]", v, 0.0, math.inf) for k, v in self.per_kernel.items()]
        for name, value, low, high in checks:
            if not (isinstance(value, (int, float)) and low <= value <= high) or (
                    name == "alpha" and value == 0.0):
                raise ValueError(f"GatePolicy.{name}: {value!r} is out of range")

    def threshold_for(self, kernel: str, header: Mapping | None = None) -> float:
        """The configured threshold for `kernel`: explicit per-kernel value, else the suite's
        (per kernel, then suite-wide) from the run header, else `threshold`."""
        if kernel in self.per_kernel:
            return float(self.per_kernel[kernel])
        gate = (header or {}).get("gate") or {} if self.use_suite_thresholds else {}
        per = gate.get("kernels") or {}
        if per.get(kernel) is not None:
            return float(per[kernel])
        if gate.get("threshold") is not None:
            return float(gate["threshold"])
        return float(self.threshold)


@dataclass(frozen=True)
class Comparison:
    """One case's verdict. `ratio` is current/baseline time (Hodges-Lehmann estimate of the
    ratio of medians), `ci` its confidence interval at `ci_level`, `threshold` the relative
    slowdown that counts (after the noise floor), `reasons` human-readable lines."""

    id: str
    kernel: str
    verdict: str
    ratio: float | None
    ci: tuple[float, float] | None
    threshold: float | None
    reasons: tuple[str, ...]
    backend: str = ""
    dtype: str = ""
    baseline_s: float | None = None
    current_s: float | None = None
    ci_level: float | None = None
    #: smallest two-sided level at which the interval leaves the threshold band (the p-value
    #: of "the change exceeds the threshold"), before the FDR control
    p_value: float | None = None
    #: the case's measured noise (standard error of its log ratio, drift included) that set
    #: the threshold's floor
    noise: float | None = None
    paired: bool = False
    n_samples: tuple[int, int] | None = None

    @property
    def failing(self) -> bool:
        return self.verdict in FAILING

    @property
    def effect(self) -> float:
        """Size of the change for sorting: |log ratio| (0 without a timing)."""
        return abs(math.log(self.ratio)) if self.ratio and self.ratio > 0 else 0.0

    def line(self) -> str:
        """One line naming the case and why: what CI logs and the PR summary show."""
        parts = [f"{self.verdict.upper()} {self.id}"]
        if self.ratio is not None:
            parts.append(timing_text(self))
        parts.extend(self.reasons)
        return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")


@dataclass(frozen=True)
class GateResult:
    comparisons: tuple[Comparison, ...]
    #: False when the runs' fingerprints or settings differ and foreign runs are not allowed
    comparable: bool
    notes: tuple[str, ...]
    mode: str  # "paired" (same-job A/B) | "stored" (two separate runs)
    drift: float | None = None  # between-run drift SD of log time used to widen intervals
    baseline: str = ""
    current: str = ""

    @property
    def failed(self) -> bool:
        return any(c.failing for c in self.comparisons)

    def counts(self) -> dict[str, int]:
        out = {v: 0 for v in VERDICTS}
        for c in self.comparisons:
            out[c.verdict] += 1
        return out


def timing_text(c: Comparison) -> str:
    """'1.27x slower (CI 1.21x-1.33x at 95%, threshold 1.10x)'."""
    if c.ratio is None:
        return ""
    word = "slower" if c.ratio >= 1 else "faster"
    shown = c.ratio if c.ratio >= 1 else 1 / c.ratio
    text = f"{_fmt_ratio(shown)} {word}"
    if c.ci is not None:
        lo, hi = c.ci
        level = f" at {100 * c.ci_level:.4g}%" if c.ci_level is not None else ""
        text += f" (ratio CI {_fmt_ratio(lo)}-{_fmt_ratio(hi)}{level}"
        text += f", threshold {_fmt_ratio(1 + c.threshold)})" if c.threshold is not None else ")"
    return text


def _fmt_ratio(x: float) -> str:
    if x == 0:
        return "0"
    if math.isinf(x):
        return "inf"
    return f"{x:.3f}x" if x < 10 else f"{x:.3g}x"


# -- rank statistics --------------------------------------------------------------------------
@functools.lru_cache(maxsize=512)
def _mann_whitney_cdf(m: int, n: int) -> np.ndarray:
    """Exact null CDF of U = #{(x, y): y > x} for samples of sizes m and n (no ties).

    Recursion on the largest of the m + n observations: it is an x with probability m/(m+n)
    (U unchanged) or a y with probability n/(m+n) (it exceeds all m x's: U grows by m)."""
    row = [np.ones(1) for _ in range(n + 1)]  # i = 0: U = 0 whatever j
    for i in range(1, m + 1):
        new = [np.ones(1)]
        for j in range(1, n + 1):
            p = np.zeros(i * j + 1)
            prev_i = row[j]  # sizes (i-1, j)
            prev_j = new[j - 1]  # sizes (i, j-1), shifted by i
            p[:prev_i.size] += prev_i * (i / (i + j))
            p[i:i + prev_j.size] += prev_j * (j / (i + j))
            new.append(p)
        row = new
    return np.minimum(np.cumsum(row[n]), 1.0)


@functools.lru_cache(maxsize=512)
def _signed_rank_cdf(n: int) -> np.ndarray:
    """Exact null CDF of the Wilcoxon signed-rank statistic T+ for n pairs (no ties, no zeros):
    each rank k enters T+ with probability 1/2."""
    p = np.ones(1)
    for k in range(1, n + 1):
        q = np.zeros(p.size + k)
        q[:p.size] += 0.5 * p
        q[k:] += 0.5 * p
        p = q
    return np.minimum(np.cumsum(p), 1.0)


@dataclass(frozen=True)
class _Null:
    """The null distribution of a rank statistic S on 0..N, symmetric about N/2."""

    size: int  # N
    cdf: np.ndarray | None  # exact CDF, or None for the normal approximation
    sd: float

    def critical(self, gamma: float) -> int:
        """max{u: P(S <= u) <= gamma/2}, or -1 when even u = 0 is too likely."""
        if self.cdf is not None:
            return int(np.searchsorted(self.cdf, gamma / 2 * (1 + 1e-12), side="right")) - 1
        if gamma >= 1:
            return (self.size - 1) // 2
        u = self.size / 2 - 0.5 + self.sd * _NORMAL.inv_cdf(max(gamma, MIN_LEVEL) / 2)
        return int(min(max(math.floor(u + 1e-9), -1), (self.size - 1) // 2))


@dataclass(frozen=True)
class ShiftInterval:
    """A Hodges-Lehmann shift estimate of log time with its rank-test confidence intervals.

    `estimates` are the sorted pairwise estimates (differences of log times between the two
    samples, or Walsh averages of paired log ratios); the interval at level 1 - gamma runs from
    the (c+1)-th smallest to the (c+1)-th largest, c the rank statistic's critical value, which
    makes it exactly dual to the rank test. `widen` (SD, log scale) adds between-run drift in
    quadrature, for comparisons that drift does not cancel in."""

    estimates: np.ndarray
    null: _Null
    widen: float = 0.0

    @property
    def estimate(self) -> float:
        return float(np.median(self.estimates))

    def interval(self, gamma: float) -> tuple[float, float]:
        """Two-sided (1 - gamma) interval for the shift in log time."""
        c = self.null.critical(gamma)
        if c < 0:
            return -math.inf, math.inf
        lo, hi = float(self.estimates[c]), float(self.estimates[self.estimates.size - 1 - c])
        if self.widen > 0:
            est = self.estimate
            z = _NORMAL.inv_cdf(1 - max(gamma, MIN_LEVEL) / 2) if gamma < 1 else 0.0
            extra = (z * self.widen) ** 2
            lo = est - math.sqrt((est - lo) ** 2 + extra)
            hi = est + math.sqrt((hi - est) ** 2 + extra)
        return lo, hi

    def level_excluding(self, delta: float, side: str) -> float:
        """Smallest gamma at which the (1 - gamma) interval lies entirely above `delta`
        (side 'above') or below it ('below'); 1.0 when it never does. This is the p-value
        of the one-sided test doubled: the interval is monotone in gamma."""
        def excludes(g: float) -> bool:
            lo, hi = self.interval(g)
            return lo > delta if side == "above" else hi < delta

        if not excludes(1.0):
            return 1.0
        if excludes(MIN_LEVEL):
            return MIN_LEVEL
        low, high = MIN_LEVEL, 1.0  # excludes(high) holds; find the smallest such level
        for _ in range(60):
            mid = (low + high) / 2
            if excludes(mid):
                high = mid
            else:
                low = mid
            if high - low < 1e-6 * high:
                break
        return high


def two_sample(baseline_s: Sequence[float], current_s: Sequence[float],
               widen: float = 0.0) -> ShiftInterval:
    """Shift of log(current) over log(baseline): Hodges-Lehmann with the Mann-Whitney interval."""
    x = np.log(np.asarray(baseline_s, dtype=float))
    y = np.log(np.asarray(current_s, dtype=float))
    m, n = x.size, y.size
    est = np.sort(np.subtract.outer(y, x).ravel())
    size = m * n
    cdf = _mann_whitney_cdf(min(m, n), max(m, n)) if size <= EXACT_MAX_TWO_SAMPLE else None
    sd = math.sqrt(m * n * (m + n + 1) / 12)
    return ShiftInterval(est, _Null(size, cdf, sd), widen)


def paired(baseline_s: Sequence[float], current_s: Sequence[float]) -> ShiftInterval:
    """Shift of log(current/baseline) over interleaved pairs: Hodges-Lehmann (median of the
    Walsh averages) with the Wilcoxon signed-rank interval."""
    d = np.log(np.asarray(current_s, dtype=float)) - np.log(np.asarray(baseline_s, dtype=float))
    n = d.size
    i, j = np.triu_indices(n)
    est = np.sort((d[i] + d[j]) / 2)
    size = n * (n + 1) // 2
    cdf = _signed_rank_cdf(n) if n <= EXACT_MAX_SIGNED_RANK else None
    sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    return ShiftInterval(est, _Null(size, cdf, sd))


def benjamini_hochberg(pvalues: Sequence[float], alpha: float) -> tuple[np.ndarray, int]:
    """Benjamini-Hochberg step-up: (mask of rejected hypotheses, number rejected R)."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool), 0
    order = np.argsort(p, kind="stable")
    passed = p[order] <= alpha * np.arange(1, m + 1) / m
    r = int(np.nonzero(passed)[0].max() + 1) if passed.any() else 0
    mask = np.zeros(m, dtype=bool)
    mask[order[:r]] = True
    return mask, r


# -- comparability ----------------------------------------------------------------------------
def comparability(baseline: Mapping, current: Mapping) -> list[str]:
    """Why two run headers' timings are not comparable (empty when they are): a different
    machine fingerprint (CPU, cores, GPU, library versions), thread count or allocator."""
    problems = []
    fb, fc = baseline.get("fingerprint"), current.get("fingerprint")
    if fb != fc:
        diffs = _fingerprint_diff(baseline, current)
        problems.append(f"machine fingerprints differ ({fb} vs {fc}"
                        + (f": {diffs}" if diffs else "") + ")")
    sb, sc = baseline.get("settings") or {}, current.get("settings") or {}
    for key in ("threads", "allocator"):
        if sb.get(key) != sc.get(key):
            problems.append(f"settings.{key} differ ({sb.get(key)!r} vs {sc.get(key)!r})")
    return problems


def _fingerprint_diff(b: Mapping, c: Mapping) -> str:
    out = []
    mb, mc = b.get("machine") or {}, c.get("machine") or {}
    for key in ("cpu", "cores"):
        if mb.get(key) != mc.get(key):
            out.append(f"{key} {mb.get(key)!r} -> {mc.get(key)!r}")
    gb = [g.get("name") for g in mb.get("gpus") or []]
    gc = [g.get("name") for g in mc.get("gpus") or []]
    if gb != gc:
        out.append(f"gpus {gb} -> {gc}")
    sb, sc = b.get("software") or {}, c.get("software") or {}
    for key in sorted(set(sb) | set(sc)):
        if sb.get(key) != sc.get(key):
            out.append(f"{key} {sb.get(key)} -> {sc.get(key)}")
    return ", ".join(out)


# -- the comparison -----------------------------------------------------------------------------
def compare_runs(baseline: RunFile, current: RunFile,
                 policy: GatePolicy | None = None) -> list[Comparison]:
    """Per-case verdicts of `current` against `baseline` (see `compare` for the whole result)."""
    return list(compare(baseline, current, policy).comparisons)


def compare(baseline: RunFile, current: RunFile, policy: GatePolicy | None = None) -> GateResult:
    """Join the two runs on case id and judge every case (module docstring: how and why)."""
    policy = policy or GatePolicy()
    bh, ch = baseline.header, current.header
    notes: list[str] = []
    problems = comparability(bh, ch)
    comparable = not problems or policy.allow_foreign
    if problems:
        verb = "compared anyway (allowed)" if policy.allow_foreign else (
            "timing, memory and compile-counter verdicts refused")
        notes.append(f"not comparable: {'; '.join(problems)}: {verb}")
    ab_b, ab_c = (bh.get("ab") or {}).get("id"), (ch.get("ab") or {}).get("id")
    paired_run = ab_b is not None and ab_b == ab_c
    base, cur = latest_by_id(baseline.cases), latest_by_id(current.cases)
    changed = _changed_kernels(bh, ch)

    drafts: dict[str, _Draft] = {}
    for cid in [*cur, *(k for k in base if k not in cur)]:
        drafts[cid] = _judge_exact(cid, base.get(cid), cur.get(cid), policy, comparable)

    timed: list[_Draft] = []
    for d in drafts.values():
        if d.timing_ok and comparable:
            _prepare_timing(d, policy, ch, paired_run)
            if d.shift is not None:
                timed.append(d)

    drift = None
    if not paired_run and policy.drift and timed:
        estimate, note = _estimate_drift(timed, changed)
        drift = max(estimate or 0.0, policy.min_drift)
        if note:
            notes.append(note)
        if estimate is None or estimate < policy.min_drift:
            notes.append(f"between-run drift taken as {policy.min_drift:.0%}, the least two "
                         f"separate jobs are assumed to differ by")
        if drift:
            for d in timed:
                d.shift = ShiftInterval(d.shift.estimates, d.shift.null, drift)
    for d in timed:
        _apply_floor(d, policy)
    if timed:
        common = float(np.median([d.shift.estimate for d in timed]))
        if not paired_run and abs(common) > math.log1p(0.10):
            notes.append(f"the whole current run is {math.expm1(common):+.0%} against the "
                         f"baseline (median over {len(timed)} cases): machine drift is likely; "
                         f"`kernbench ab` cancels it")
    untested: frozenset[str] = frozenset()
    if paired_run and policy.trust_code_hash and changed is not None:
        untested = frozenset(d.id for d in timed if d.c.get("kernel") not in changed)
        if untested:
            notes.append(f"{len(untested)} cases of kernels whose code is identical on both "
                         f"sides are not tested for a change (same harness, same process: any "
                         f"difference is noise); {len(timed) - len(untested)} are")
    _timing_verdicts(timed, policy.alpha, untested)
    comparisons = tuple(d.finish() for d in drafts.values())
    return GateResult(comparisons, comparable, tuple(notes), "paired" if paired_run else "stored",
                      drift, baseline.path, current.path)


@dataclass
class _Draft:
    """A case's verdict under construction."""

    id: str
    b: dict | None
    c: dict | None
    verdict: str | None = None  # set by an exact gate or a status change
    reasons: list[str] = field(default_factory=list)
    timing_ok: bool = False
    interpreted: bool = False
    shift: ShiftInterval | None = None
    delta: float | None = None  # log(1 + threshold)
    threshold: float | None = None
    noise: float | None = None
    ci: tuple[float, float] | None = None
    ci_level: float | None = None
    p_value: float | None = None
    timing_verdict: str | None = None
    paired: bool = False

    def finish(self) -> Comparison:
        rec = self.c or self.b or {}
        verdict = self.verdict or self.timing_verdict or "inconclusive"
        ratio = math.exp(self.shift.estimate) if self.shift is not None else None
        ci = (math.exp(self.ci[0]), math.exp(self.ci[1])) if self.ci is not None else None
        label = rec.get("backend", "")
        if rec.get("variant"):
            label = f"{label}:{rec['variant']}"
        n = None
        if self.shift is not None:
            n = (len(_samples(self.b)), len(_samples(self.c)))
        return Comparison(self.id, rec.get("kernel", self.id.split("/", 1)[0]), verdict, ratio, ci,
                          self.threshold, tuple(self.reasons), label, rec.get("dtype", ""),
                          _median(self.b), _median(self.c), self.ci_level, self.p_value,
                          self.noise, self.paired, n)


def _judge_exact(cid: str, b: dict | None, c: dict | None, policy: GatePolicy,
                 comparable: bool) -> _Draft:
    d = _Draft(cid, b, c)
    if c is None:
        d.verdict = "missing"
        d.reasons.append("in the baseline, not in the current run")
        return d
    cs = c.get("status")
    if b is None:
        if cs in FAILING_STATUSES:
            d.verdict = "failed"
            d.reasons.append(f"new case, and it is {cs}: {_reason(c)}")
        else:
            d.verdict = "new"
            d.reasons.append(f"not in the baseline ({cs})")
        return d
    bs = b.get("status")
    if cs in FAILING_STATUSES:
        if bs in FAILING_STATUSES:
            d.verdict = "same"
            d.reasons.append(f"still {cs} (was {bs}): {_reason(c)}")
        else:
            d.verdict = "failed"
            d.reasons.append(f"was {bs}, now {cs}: {_reason(c)}")
        return d
    if cs in NOT_RUN_STATUSES:
        if bs == "ok":
            d.verdict = "missing"
            d.reasons.append(f"was ok, now {cs}: {_reason(c)}")
        else:
            d.verdict = "same"
            d.reasons.append(f"{cs} in both runs: {_reason(c)}")
        return d
    # the current case is ok
    if bs != "ok":
        d.verdict = "improvement" if bs in FAILING_STATUSES else "new"
        d.reasons.append(f"was {bs}, now ok" + (f" (was: {_reason(b)})" if b.get("reason") else ""))
        return d
    exact = _accuracy_growth(b, c, policy)
    if comparable:
        exact += _compile_counters(b, c) + _memory_growth(b, c, policy)
    if exact:
        d.verdict = "failed"
        d.reasons.extend(exact)
    flags = set(c.get("flags") or []) | set(b.get("flags") or [])
    d.interpreted = "interpreted" in flags
    if d.interpreted:
        d.reasons.append("interpreted backend: timing not compared")
    elif len(_samples(b)) >= MIN_SAMPLES and len(_samples(c)) >= MIN_SAMPLES:
        d.timing_ok = True
    else:
        d.reasons.append(f"too few timing samples ({len(_samples(b))} and {len(_samples(c))}; "
                         f"need {MIN_SAMPLES})")
    if not comparable and not d.interpreted:
        d.reasons.append("timing not compared: the runs are not comparable")
    busy = [side for side, rec in (("baseline", b), ("current", c))
            if "contended" in (rec.get("flags") or [])]
    if busy and d.timing_ok:  # judged all the same: the note says what may explain a verdict
        d.reasons.append(f"timed on shared CPUs (CONTENDED) in the {' and '.join(busy)} run: a "
                         f"change may be the load's")
    return d


def _accuracy_growth(b: dict, c: dict, policy: GatePolicy) -> list[str]:
    ab, ac = b.get("accuracy") or {}, c.get("accuracy") or {}
    if ac.get("passed") is False:
        return [f"accuracy left tolerance: rel_l2 {_num(ac.get('rel_l2')):.3g} > "
                f"{_num(ac.get('tolerance')):.3g}"]
    eb, ec, tol = _num(ab.get("rel_l2")), _num(ac.get("rel_l2")), _num(ac.get("tolerance"))
    if math.isnan(ec) or math.isnan(eb):
        return []
    floor = ACCURACY_FLOOR_FRACTION * tol if math.isfinite(tol) else 0.0
    reference = max(eb, floor)
    if reference > 0 and ec > policy.accuracy_growth * reference:
        return [f"accuracy: rel_l2 grew {ec / reference:.3g}x ({eb:.3g} -> {ec:.3g}; limit "
                f"{policy.accuracy_growth:g}x, tolerance {tol:.3g})"]
    return []


def _compile_counters(b: dict, c: dict) -> list[str]:
    cb, cc = b.get("compile") or {}, c.get("compile") or {}
    out = []
    for key, label in (("recompiles", "recompiles"), ("graph_breaks", "graph breaks")):
        vb, vc = cb.get(key), cc.get(key)
        if isinstance(vb, (int, float)) and isinstance(vc, (int, float)) and vc > vb:
            out.append(f"torch.compile {label} rose {vb:g} -> {vc:g}")
    return out


def _memory_growth(b: dict, c: dict, policy: GatePolicy) -> list[str]:
    mb, mc = b.get("memory") or {}, c.get("memory") or {}
    pb, pc = mb.get("peak_bytes"), mc.get("peak_bytes")
    if not isinstance(pb, (int, float)) or not isinstance(pc, (int, float)):
        return []
    if mb.get("method") != mc.get("method"):
        return []
    slack = MEMORY_SLACK_BYTES.get(str(mc.get("method")), DEFAULT_MEMORY_SLACK)
    if pc > policy.memory_ratio * pb and pc - pb > slack:
        ratio = f"{pc / pb:.3g}x" if pb > 0 else "from 0"
        return [f"peak memory rose {ratio} ({_bytes(pb)} -> {_bytes(pc)}, {mc.get('method')}; "
                f"limit {policy.memory_ratio:g}x)"]
    return []


def _prepare_timing(d: _Draft, policy: GatePolicy, header: Mapping, paired_run: bool) -> None:
    sb, sc = _samples(d.b), _samples(d.c)
    if min(sb + sc) <= 0 or not all(math.isfinite(x) for x in sb + sc):
        d.reasons.append("non-positive or non-finite timing samples")
        return
    pb, pc = (d.b.get("time") or {}).get("pair"), (d.c.get("time") or {}).get("pair")
    if paired_run and pb is not None and pc is not None and len(sb) == len(sc):
        d.shift = paired(sb, sc)
        d.paired = True
    else:
        d.shift = two_sample(sb, sc)
    d.threshold = policy.threshold_for(d.c.get("kernel", ""), header)


def _apply_floor(d: _Draft, policy: GatePolicy) -> None:
    """Raise the threshold to NOISE_FLOOR x the case's run-to-run noise (module docstring)."""
    lo, hi = ShiftInterval(d.shift.estimates, d.shift.null).interval(ONE_SIGMA)
    configured = d.threshold
    if math.isfinite(lo) and math.isfinite(hi):
        d.noise = math.hypot((hi - lo) / 2, d.shift.widen)
        floor = math.expm1(policy.noise_floor * d.noise)
        if floor > configured:
            d.threshold = floor
            d.reasons.append(f"threshold raised from {configured:.0%} to the case's noise floor "
                             f"{floor:.0%}")
    d.delta = math.log1p(d.threshold)


def _estimate_drift(timed: list[_Draft], changed: set[str] | None) -> tuple[float | None, str]:
    """Between-run drift SD (log scale) from control cases: the root mean square of their log
    ratios, which counts a common shift of the whole run as drift too. Not a robust scale (MAD):
    drift on a shared machine is heavy-tailed and comes in bursts that hit whole worker groups
    (measured here: 9 of 12 cases within 10%, the 3 torch cases run in one burst 2.5x apart), and
    a robust scale ignores exactly those, which then read as regressions or improvements.
    Only when the headers do not say which kernels changed are all cases used, and then with the
    robust scale (1.4826 x median |log ratio|), so that real regressions among them do not hide
    themselves by inflating it."""
    robust = changed is None
    if changed is None:
        controls = timed
        source = "all cases, robust SD (the run headers do not say which kernels changed)"
    else:
        controls = [d for d in timed if d.c.get("kernel") not in changed]
        source = (f"{len(controls)} cases of unchanged kernels" if changed
                  else "all cases (no kernel code changed)")
    if len(controls) < MIN_CONTROLS:
        return None, (f"between-run drift not estimated: {len(controls)} control cases "
                      f"(unchanged kernels), need {MIN_CONTROLS}; stored-baseline timing "
                      f"verdicts assume only the minimum drift - prefer `kernbench ab`")
    ratios = np.array([d.shift.estimate for d in controls])
    if robust:
        drift = float(1.4826 * np.median(np.abs(ratios)))
    else:
        drift = float(np.sqrt(np.mean(ratios ** 2)))
    return drift, (f"between-run drift {drift:.1%} (log ratios over {source}) "
                   f"widens every interval")


def _timing_verdicts(timed: list[_Draft], alpha: float,
                     untested: frozenset[str] = frozenset()) -> None:
    """Benjamini-Hochberg over the cases' p-values of 'outside the threshold band'; discoveries
    get the false-coverage-adjusted interval, everything else the plain (1 - alpha) one. Cases
    in `untested` (identical code on both sides of an A/B run) are outside the family: they can
    be `same` or `inconclusive`, never a discovery."""
    for d in timed:
        p_up = d.shift.level_excluding(d.delta, "above")
        p_down = d.shift.level_excluding(-d.delta, "below")
        d.p_value = min(p_up, p_down)
    tested = [d for d in timed if d.id not in untested]
    mask, r = benjamini_hochberg([d.p_value for d in tested], alpha)
    selected_ids = {d.id for d, sel in zip(tested, mask) if sel}
    m = max(len(tested), 1)
    for d in timed:
        selected = d.id in selected_ids
        gamma = r * alpha / m if selected else alpha
        lo, hi = d.shift.interval(gamma)
        d.ci, d.ci_level = (lo, hi), 1 - gamma
        if d.id in untested and (lo > d.delta or hi < -d.delta):
            d.timing_verdict = "inconclusive"
            d.reasons.append("beyond the threshold, but base and head run identical kernel code "
                             "here: an A/B artifact (order, memory placement), not a change")
        elif selected and lo > d.delta:
            d.timing_verdict = "regression"
        elif selected and hi < -d.delta:
            d.timing_verdict = "improvement"
        elif -d.delta <= lo and hi <= d.delta:
            d.timing_verdict = "same"
        else:
            d.timing_verdict = "inconclusive"
            if lo > d.delta or hi < -d.delta:
                d.reasons.append(f"beyond the threshold at {1 - alpha:.0%} but not after "
                                 f"false-discovery control over {m} cases")
            elif math.isinf(lo):
                d.reasons.append("too few samples for an interval at this level")
            else:
                d.reasons.append("interval straddles the threshold: more samples would decide"
                                 + ("" if d.paired else " (or `kernbench ab`)"))
        if d.verdict == "failed" and d.timing_verdict == "regression":
            d.reasons.append(f"also slower: {timing_text(d.finish())}")


def _changed_kernels(bh: Mapping, ch: Mapping) -> set[str] | None:
    """Kernels whose code hash differs between the runs; None when a header lacks hashes."""
    kb, kc = bh.get("kernels"), ch.get("kernels")
    if not isinstance(kb, dict) or not isinstance(kc, dict) or not kc:
        return None
    out = set()
    for name, info in kc.items():
        hb = (kb.get(name) or {}).get("code_hash")
        hc = (info or {}).get("code_hash")
        if hb is None or hc is None or hb != hc:
            out.add(name)
    return out


# -- record helpers -------------------------------------------------------------------------------
def _samples(rec: dict | None) -> list[float]:
    t = (rec or {}).get("time") or {}
    return [float(x) for x in t.get("samples_s") or [] if isinstance(x, (int, float))]


def _median(rec: dict | None) -> float | None:
    s = _samples(rec)
    return float(np.median(s)) if s else None


def _num(x) -> float:
    if isinstance(x, bool):
        return math.nan
    if isinstance(x, (int, float)):
        return float(x)
    if x in ("inf", "-inf"):
        return math.inf if x == "inf" else -math.inf
    return math.nan


def _reason(rec: dict) -> str:
    reason = str(rec.get("reason") or "no reason recorded")
    return reason if len(reason) <= 300 else reason[:297] + "..."


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
