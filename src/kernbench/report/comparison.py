"""Compare mode: two or more runs side by side (two commits, two machines, two library versions).

Each later run is judged against the first by `kernbench.compare` — the very code the gate
uses — so the report's verdict column and `kernbench gate` can never disagree. This module only
joins the verdicts into rows (one per case id, one column per run) and per-kernel summaries;
it has no statistics of its own. Where the gate refuses a timing verdict (different machines,
unless `allow_foreign`), the plain ratio of medians is still shown, labelled as such.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from ..compare import VERDICTS, Comparison, GatePolicy, compare
from ..results import RunFile, latest_by_id
from .model import backend_key, dtype_key, flags_of, label_of, params_text
from .units import geomean

#: Most serious first: the order rows are listed in, and which verdict a summary cell shows.
SEVERITY = ("failed", "regression", "missing", "inconclusive", "improvement", "new", "same")


def severity(verdict: str) -> int:
    return SEVERITY.index(verdict) if verdict in SEVERITY else len(SEVERITY)


@dataclass(frozen=True)
class RunRef:
    letter: str  # "A" (the baseline), "B", ...
    path: str
    header: dict


@dataclass(frozen=True)
class Judged:
    """One case in one later run: the gate's comparison, and the ratio to show."""

    comparison: Comparison
    ratio: float | None
    ratio_is_plain: bool  # True: a plain ratio of medians, the gate gave no timing estimate
    status: str | None  # the case's status in this run (None: not in it)


@dataclass(frozen=True)
class CompareRow:
    id: str
    kernel: str
    label: str
    dtype: str
    device: str
    mode: str
    params: str
    base_median: float | None
    base_status: str | None
    judged: list[Judged | None]  # one per later run

    @property
    def worst(self) -> str:
        verdicts = [j.comparison.verdict for j in self.judged if j is not None]
        return min(verdicts, key=severity) if verdicts else "same"

    @property
    def effect(self) -> float:
        return max((abs(math.log(j.ratio)) for j in self.judged
                    if j is not None and j.ratio and j.ratio > 0), default=0.0)


@dataclass(frozen=True)
class PairSummary:
    """One later run against the baseline: verdict counts, the gate's notes, and per
    (kernel, dtype) x backend the geometric mean of the time ratios with the worst verdict."""

    current: RunRef
    counts: dict[str, int]
    notes: tuple[str, ...]
    comparable: bool
    mode: str
    labels: list[str]
    #: (kernel, dtype) -> backend -> (geometric-mean ratio, worst verdict, cases)
    matrix: dict[tuple[str, str], dict[str, tuple[float | None, str, int]]]


@dataclass(frozen=True)
class ComparisonModel:
    runs: list[RunRef]
    pairs: list[PairSummary]
    rows: list[CompareRow]


def build_comparison(runs: list[RunFile], policy: GatePolicy | None = None) -> ComparisonModel:
    """Every later run against the first."""
    refs = [RunRef(chr(ord("A") + i) if i < 26 else f"R{i}", r.path, r.header)
            for i, r in enumerate(runs)]
    base_cases = latest_by_id(runs[0].cases)
    records: dict[str, dict] = dict(base_cases)
    judged: dict[str, list[Judged | None]] = defaultdict(lambda: [None] * (len(runs) - 1))
    pairs = []
    for i, run in enumerate(runs[1:]):
        result = compare(runs[0], run, policy)
        cur = latest_by_id(run.cases)
        for cid, rec in cur.items():
            records.setdefault(cid, rec)
        matrix_items: dict[tuple[str, str], dict[str, list]] = defaultdict(
            lambda: defaultdict(list))
        for c in result.comparisons:
            ratio, plain = c.ratio, False
            rec = cur.get(c.id)
            interpreted = "interpreted" in flags_of(rec or records.get(c.id) or {})
            if ratio is None and c.baseline_s and c.current_s and not interpreted:
                ratio, plain = c.current_s / c.baseline_s, True
            judged[c.id][i] = Judged(c, ratio, plain, rec.get("status") if rec else None)
            info = records.get(c.id, {})
            label = label_of(info) if info else c.backend
            key = (c.kernel, str(info.get("dtype", c.dtype)))
            matrix_items[key][label].append((ratio if not plain else None, c.verdict))
        labels = sorted({lab for row in matrix_items.values() for lab in row}, key=backend_key)
        matrix = {}
        for key, by_label in matrix_items.items():
            matrix[key] = {}
            for lab, items in by_label.items():
                worst = min((v for _, v in items), key=severity)
                matrix[key][lab] = (geomean([r for r, _ in items if r]), worst, len(items))
        counts = {v: 0 for v in VERDICTS}
        for c in result.comparisons:
            counts[c.verdict] = counts.get(c.verdict, 0) + 1
        pairs.append(PairSummary(refs[i + 1], {k: v for k, v in counts.items() if v},
                                 result.notes, result.comparable, result.mode, labels, matrix))
    rows = []
    for cid, js in judged.items():
        rec = records.get(cid, {})
        base = base_cases.get(cid)
        base_median = None
        if base is not None:
            t = base.get("time") if isinstance(base.get("time"), dict) else {}
            first = next((j for j in js if j is not None), None)
            base_median = first.comparison.baseline_s if first else None
            if base_median is None and isinstance(t.get("median_s"), (int, float)):
                base_median = float(t["median_s"])
        rows.append(CompareRow(cid, str(rec.get("kernel") or cid.split("/", 1)[0]),
                               label_of(rec) if rec else "?", str(rec.get("dtype") or "?"),
                               str(rec.get("device") or "?"), str(rec.get("mode") or "forward"),
                               params_text(rec) if rec else cid, base_median,
                               str(base.get("status")) if base else None, js))
    rows.sort(key=lambda r: (severity(r.worst), -r.effect, r.kernel, backend_key(r.label),
                             dtype_key(r.dtype), r.params))
    return ComparisonModel(refs, pairs, rows)
