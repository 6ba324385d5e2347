"""Results -> tables: the one model that the HTML report, `kernbench show` and its markdown share.

Pure data, no markup and no plotting, so the terminal and the browser cannot disagree about a
number. It reads case records as plain dicts and never assumes a field is there: a failed,
skipped or older record simply yields empty cells.

The rules a reader must be able to trust are decided here, once:
- a time is *ranked* (may be the fastest, may count in a geometric mean) only when the case is
  ok, accurate, not interpreted (Triton under its CPU interpreter) and not suspect (above the
  machine's ceiling, usually a missing synchronisation);
- a speedup is the reference backend's median over this case's median, for the same shape and
  dtype; where the reference cannot run that dtype at all (NumPy has no bfloat16) it is taken
  over the reference's float32 time and the cell says so; interpreted times get no speedup;
- the best backend of a (kernel, dtype) is the one with the lowest geometric-mean time among
  those that have a ranked time on every shape of the sweep (so a backend cannot win by
  skipping the hard shapes); when none covers every shape, the widest coverage competes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..contention import CONTENDED_SHARE
from ..dtypes import FORMATS
from ..errors import unknown
from ..metrics import ceiling_for
from ..results import RunFile, latest_by_id
from ..spec import format_params
from .units import geomean, num

#: Backend families in the order a reader expects them: the baseline first, the GPU-only last.
FAMILY_ORDER = ("numpy", "numba", "torch_eager", "torch_compile", "jax_jit", "triton")
#: Float formats from the most to the least precise: the direction in which error grows.
DTYPE_ORDER = ("float64", "float32", "float16", "bfloat16")
#: Problems listed most serious first.
PROBLEM_ORDER = ("crashed", "timeout", "failed", "skipped", "unsupported")
#: Flags that keep a time out of rankings, and why (shown to the reader).
UNRANKED_FLAGS = {
    "interpreted": "interpreted (Triton's interpreter or numba's CUDA simulator on the CPU): "
                   "proves correctness, its time is not a GPU kernel's time",
    "suspect": "faster than this machine's measured ceiling allows: a missing synchronisation, "
               "or a ceiling measured while the machine was slower (kernbench calibrate --force)",
    "inaccurate": "fails its accuracy tolerance",
}
#: A flag that keeps the time ranked but warns that it may be too slow.
CONTENDED_TEXT = ("timed on shared CPUs ({figures}): the time may be too slow, even with a tight "
                  "spread")
#: A flag that keeps the time ranked and says why it is past the run's roof.
ROOF_ROSE_TEXT = ("above the memory roof measured as the run began, within the better of that "
                  "one and the roof measured again right after this case ({figures}): not "
                  "suspect, ranked; % of roof stays of the run's roof")
DEFAULT_REFERENCE = "numpy"
#: Row labels (parameters) up to this long are shown whole, even where some never vary.
SHORT_LABEL = 32
#: Where the reference backend lacks a dtype, speedups are taken over its time in this dtype.
FALLBACK_DTYPE = "float32"


# -- small accessors that never raise ----------------------------------------------------------
def label_of(case: dict) -> str:
    """`torch_eager`, or `torch_eager:manual` for a variant: the column a case belongs in."""
    backend = str(case.get("backend") or "?")
    variant = case.get("variant")
    return f"{backend}:{variant}" if variant else backend


def backend_key(label: str) -> tuple:
    family, _, variant = label.partition(":")
    rank = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
    return (rank, family, variant)


def dtype_key(dtype: str) -> tuple:
    return (DTYPE_ORDER.index(dtype) if dtype in DTYPE_ORDER else len(DTYPE_ORDER), dtype)


def flags_of(case: dict) -> tuple[str, ...]:
    flags = case.get("flags")
    return tuple(str(f) for f in flags) if isinstance(flags, list) else ()


def sub(case: dict, key: str) -> dict:
    value = case.get(key)
    return value if isinstance(value, dict) else {}


def median_of(case: dict) -> float | None:
    median = num(sub(case, "time").get("median_s"))
    return median if median is not None and median > 0 and math.isfinite(median) else None


def params_text(case: dict) -> str:
    params = case.get("params")
    return format_params(params) if isinstance(params, dict) else str(params or "")


def eps_of(dtype: str) -> float | None:
    fmt = FORMATS.get(dtype)
    return fmt.eps if fmt else None


def is_ranked(case: dict) -> bool:
    """May this case's time be compared with others (fastest mark, geometric means)?"""
    return (case.get("status") == "ok" and median_of(case) is not None
            and sub(case, "accuracy").get("passed") is not False
            and not any(f in UNRANKED_FLAGS for f in flags_of(case)))


def unranked_why(case: dict) -> tuple[str, ...]:
    """The reasons a timed case is not ranked, as flag names (interpreted, suspect, ...)."""
    why = [f for f in flags_of(case) if f in UNRANKED_FLAGS]
    if sub(case, "accuracy").get("passed") is False and "inaccurate" not in why:
        why.append("inaccurate")
    return tuple(why)


# -- the row of a table: one (mode, shape, dtype, device) ------------------------------------
@dataclass(frozen=True, order=True)
class RowKey:
    device: str
    mode: str
    dtype_rank: tuple
    shape_rank: int
    params: str
    dtype: str


@dataclass(frozen=True)
class SpeedCell:
    label: str
    status: str
    median_s: float | None = None
    spread: float | None = None  # IQR / median
    min_s: float | None = None
    n_samples: int | None = None
    speedup: float | None = None
    speedup_over: str | None = None  # the reference's dtype when it is not this row's
    rate: float | None = None
    rate_unit: str = ""
    fraction: float | None = None  # of the roofline bound at this case's intensity
    bound: str = ""  # "memory" | "compute" | ""
    unranked: tuple[str, ...] = ()
    ranked: bool = False
    fastest: bool = False
    reason: str | None = None
    case_id: str = ""
    #: how the CPUs were shared while it was timed, where the case is flagged `contended`
    contended: str | None = None
    #: the memory roof re-measured after it, where the case is flagged `roof_rose`
    roof_rose: str | None = None


@dataclass(frozen=True)
class Row:
    key: RowKey
    cells: dict[str, Any]


@dataclass(frozen=True)
class Table:
    """Rows = shape × dtype (× mode, × device), columns = backends."""

    labels: list[str]
    rows: list[Row]
    show_device: bool
    show_mode: bool
    #: full params text -> what the row shows (without the parameters every row shares)
    short: dict[str, str] = field(default_factory=dict)

    def shape(self, params: str) -> str:
        return self.short.get(params, params)


@dataclass(frozen=True)
class MemoryCell:
    label: str
    status: str
    peak_bytes: float | None
    output_bytes: float | None
    io_bytes: float | None
    method: str | None
    reason: str | None = None

    @property
    def overhead(self) -> float | None:
        """Peak over the minimum a call must allocate (its outputs)."""
        if self.peak_bytes is None or not self.output_bytes:
            return None
        return self.peak_bytes / self.output_bytes


@dataclass(frozen=True)
class CompileCell:
    label: str
    status: str
    first_s: float | None
    cold_s: float | None = None
    warm_s: float | None = None
    graphs: float | None = None
    graph_breaks: float | None = None
    recompiles: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class AccuracyPoint:
    """One case's error, for the accuracy table and the heat map."""

    label: str
    dtype: str
    params: str
    status: str
    rel_l2: float | None
    max_ulp: float | None
    max_abs: float | None
    tolerance: float | None
    passed: bool | None
    nonfinite: float | None
    worst_output: str | None

    @property
    def rel_l2_eps(self) -> float | None:
        eps = eps_of(self.dtype)
        return None if self.rel_l2 is None or not eps else self.rel_l2 / eps

    @property
    def of_tolerance(self) -> float | None:
        if self.rel_l2 is None or not self.tolerance:
            return None
        return self.rel_l2 / self.tolerance


@dataclass(frozen=True)
class AccuracyCell:
    """A backend's worst figures in one dtype, over all shapes."""

    n: int
    passed: int
    rel_l2: float | None
    rel_l2_eps: float | None
    max_ulp: float | None
    of_tolerance: float | None
    nonfinite: float | None


@dataclass(frozen=True)
class AccuracyRow:
    label: str
    cells: dict[str, AccuracyCell]
    #: (from dtype, to dtype, factor by which the worst rel_l2 grows)
    growth: list[tuple[str, str, float | None]]


@dataclass(frozen=True)
class Problem:
    """Cases that did not produce an ok result, grouped when they share a reason."""

    status: str
    label: str
    dtype: str
    device: str
    mode: str
    params: list[str]
    reason: str
    flags: tuple[str, ...]
    traceback: str | None
    ids: list[str]


@dataclass(frozen=True)
class SummaryCell:
    label: str
    geomean: float | None  # speedup over the reference
    n: int  # shapes in the geometric mean
    total: int  # shapes in the sweep for this dtype
    best: bool
    note: str = ""  # "interpreted", "unsupported", ... when there is no figure


@dataclass(frozen=True)
class SummaryRow:
    kernel: str
    dtype: str
    device: str
    mode: str
    best: str | None
    best_wins: int  # shapes on which the best backend was the fastest
    shapes: int
    over: str  # the reference's dtype used for speedups ("" when the same)
    cells: dict[str, SummaryCell]


@dataclass(frozen=True)
class KernelSection:
    kernel: str
    speed: Table
    memory: Table
    compile: Table
    accuracy_dtypes: list[str]
    accuracy: list[AccuracyRow]
    points: list[AccuracyPoint]
    problems: list[Problem]
    cases: list[dict]  # every record of this kernel, for the plots
    counts: dict[str, int]
    #: parameters with one value across the sweep, listed once instead of on every row
    fixed: str = ""


@dataclass(frozen=True)
class ReportModel:
    path: str
    header: dict
    reference: str
    kernels: list[KernelSection]
    summary: list[SummaryRow]
    labels: list[str]  # every backend column of the summary
    counts: dict[str, int]
    dtypes: list[str] = field(default_factory=list)
    has_reference: bool = True  # False: the reference backend is not in this run
    contended: int = 0  # timed cases flagged `contended`
    roof_rose: int = 0  # timed cases flagged `roof_rose`


# -- building --------------------------------------------------------------------------------
def build(run: RunFile, reference: str | None = None) -> ReportModel:
    """The whole model of one results file. Speedups are over `reference` (default numpy; a
    reference named explicitly must be in the run, the default may be absent: no speedups)."""
    cases = list(latest_by_id(run.cases).values())
    present = {label_of(c) for c in cases}
    if reference is not None and cases and reference not in present:
        raise unknown("reference backend", reference, present, run.path)
    reference = reference or DEFAULT_REFERENCE
    ceilings = run.header.get("ceilings") if isinstance(run.header.get("ceilings"), dict) else {}
    by_kernel: dict[str, list[dict]] = defaultdict(list)
    for c in cases:
        by_kernel[str(c.get("kernel") or "?")].append(c)
    shape_rank: dict[tuple[str, str], int] = {}
    for c in cases:  # shapes in the order the suite listed them
        shape_rank.setdefault((str(c.get("kernel")), params_text(c)), len(shape_rank))
    sections = [_section(k, by_kernel[k], shape_rank, reference, ceilings or {})
                for k in sorted(by_kernel)]
    summary = [row for s in sections for row in _summary(s)]
    labels = sorted({lab for r in summary for lab in r.cells}, key=backend_key)
    counts = _count(cases)
    dtypes = sorted({str(c.get("dtype")) for c in cases}, key=dtype_key)
    timed_flags = [flags_of(c) for c in cases if median_of(c) is not None]
    return ReportModel(run.path, run.header, reference, sections, summary, labels, counts, dtypes,
                       reference in present, sum("contended" in f for f in timed_flags),
                       sum("roof_rose" in f for f in timed_flags))


def _count(cases: Iterable[dict]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for c in cases:
        counts[str(c.get("status"))] += 1
    return dict(counts)


def row_key(case: dict, shape_rank: dict[tuple[str, str], int]) -> RowKey:
    dtype = str(case.get("dtype") or "?")
    params = params_text(case)
    return RowKey(str(case.get("device") or "?"), str(case.get("mode") or "forward"),
                  dtype_key(dtype), shape_rank.get((str(case.get("kernel")), params), 0),
                  params, dtype)


def _section(kernel: str, cases: list[dict], shape_rank, reference: str,
             ceilings: dict) -> KernelSection:
    grid: dict[RowKey, dict[str, dict]] = defaultdict(dict)
    for c in cases:
        grid[row_key(c, shape_rank)][label_of(c)] = c
    labels = sorted({label_of(c) for c in cases}, key=backend_key)
    keys = sorted(grid)
    show_device = len({k.device for k in keys}) > 1
    show_mode = len({k.mode for k in keys}) > 1 or any(k.mode != "forward" for k in keys)

    short, fixed = _shorten(cases)
    speed_rows = []
    for key in keys:
        ref_median, over = _reference_time(grid, key, reference)
        cells = {lab: _speed_cell(c, ref_median, over, ceilings) for lab, c in grid[key].items()}
        ranked = [cell for cell in cells.values() if cell.ranked]
        if len(ranked) >= 2:
            best = min(ranked, key=lambda cell: cell.median_s)
            cells[best.label] = _replace(best, fastest=True)
        speed_rows.append(Row(key, cells))

    memory_rows = [Row(k, {lab: _memory_cell(c) for lab, c in grid[k].items()}) for k in keys]
    compile_rows = [Row(k, {lab: _compile_cell(c) for lab, c in grid[k].items()}) for k in keys]
    points = [_point(c) for k in keys for c in grid[k].values() if sub(c, "accuracy")]
    acc_dtypes = sorted({p.dtype for p in points}, key=dtype_key)
    return KernelSection(
        kernel=kernel,
        speed=Table(labels, speed_rows, show_device, show_mode, short),
        memory=Table(labels, memory_rows, show_device, show_mode, short),
        compile=Table(labels, compile_rows, show_device, show_mode, short),
        accuracy_dtypes=acc_dtypes,
        accuracy=_accuracy_rows(points, labels, acc_dtypes),
        points=points,
        problems=_problems(cases, shape_rank),
        cases=cases,
        counts=_count(cases),
        fixed=fixed,
    )


def _shorten(cases: list[dict]) -> tuple[dict[str, str], str]:
    """Row labels without the parameters every case shares (eps, lr, ...), and those shared
    ones as text. Only for long labels in a sweep of two shapes or more."""
    shapes = {}
    for c in cases:
        params = c.get("params")
        if isinstance(params, dict):
            shapes.setdefault(format_params(params), params)
    if len(shapes) < 2 or max(len(text) for text in shapes) <= SHORT_LABEL:
        return {}, ""
    keys = [k for k in next(iter(shapes.values()))]
    fixed = {k: v for k, v in next(iter(shapes.values())).items()
             if all(k in p and p[k] == v and type(p[k]) is type(v) for p in shapes.values())}
    if not fixed or len(fixed) == len(keys):
        return {}, ""
    short = {text: format_params({k: v for k, v in p.items() if k not in fixed})
             for text, p in shapes.items()}
    return short, format_params(fixed)


def _replace(cell: SpeedCell, **changes) -> SpeedCell:
    from dataclasses import replace

    return replace(cell, **changes)


def _reference_time(grid, key: RowKey, reference: str) -> tuple[float | None, str | None]:
    """The reference backend's median for this row, and the dtype it was taken in when that is
    not the row's own (None when it is)."""
    own = grid[key].get(reference)
    if own is not None and own.get("status") not in ("unsupported", "skipped"):
        return (median_of(own) if is_ranked(own) else None), None
    if key.dtype == FALLBACK_DTYPE:
        return None, None
    for other, row in grid.items():
        if (other.device, other.mode, other.params, other.dtype) == (
                key.device, key.mode, key.params, FALLBACK_DTYPE):
            ref = row.get(reference)
            if ref is not None and is_ranked(ref):
                return median_of(ref), FALLBACK_DTYPE
    return None, None


def _speed_cell(case: dict, ref_median: float | None, over: str | None,
                ceilings: dict) -> SpeedCell:
    label = label_of(case)
    status = str(case.get("status"))
    median = median_of(case)
    if median is None:
        return SpeedCell(label, status, reason=_reason(case), case_id=str(case.get("id")))
    t = sub(case, "time")
    iqr = num(t.get("iqr_s"))
    why = unranked_why(case)
    speedup = None
    if ref_median is not None and "interpreted" not in why:
        speedup = ref_median / median
    rate, unit, bound = _throughput(case, ceilings)
    return SpeedCell(
        label=label, status=status, median_s=median,
        spread=(iqr / median) if iqr is not None else None,
        min_s=num(t.get("min_s")), n_samples=_int(t.get("n_samples")),
        speedup=speedup, speedup_over=over if speedup is not None else None,
        rate=rate, rate_unit=unit, fraction=num(case.get("roofline_fraction")), bound=bound,
        unranked=why, ranked=is_ranked(case), reason=_reason(case), case_id=str(case.get("id")),
        contended=contended_share(case), roof_rose=roof_rechecked(case, ceilings))


def contended_line(n: int) -> str:
    """The report's and `show`'s warning about a run's contended cases."""
    were = "they were" if n != 1 else "it was"
    return (f"{n} timed case{'s' if n != 1 else ''} flagged CONTENDED: other processes or the "
            f"hypervisor took {CONTENDED_SHARE:.0%} or more of the CPUs while {were} timed; such "
            f"a time may be too slow even with a tight spread (rerun on a quiet machine, or use "
            f"the A/B gate, whose pairs share the load)")


def roof_rose_line(n: int) -> str:
    """The report's and `show`'s note on cases past the run's roof that a re-measured roof
    explained."""
    s = "s" if n != 1 else ""
    return (f"{n} timed case{s} flagged ROOF ROSE: above the memory roof measured as the run "
            f"began, within the roof measured again right after {'them' if s else 'it'}, so "
            f"not suspect; their % of roof is of the run's roof and reads above 100%")


def roof_rechecked(case: dict, ceilings: dict) -> str | None:
    """The re-measured memory roof of a case flagged `roof_rose`, against the run's, in
    words; None for a case not flagged."""
    if "roof_rose" not in flags_of(case):
        return None
    found = sub(case, "roof_recheck")
    run_roof = ceilings.get(str(case.get("device"))) or {}
    parts = []
    for key, text in (("copy_gbps", "copy"), ("update_gbps", "update")):
        now, then = num(found.get(key)), num(run_roof.get(key))
        if now is not None:
            parts.append(f"{text} {now:.1f} GB/s" + (f" (run: {then:.1f})" if then else ""))
    return ", ".join(parts) or "no figures recorded"


def contended_share(case: dict) -> str | None:
    """How the CPUs were shared while a case flagged `contended` was timed, in words; None
    for a case not flagged."""
    if "contended" not in flags_of(case):
        return None
    found = sub(case, "contention")
    # the two figures that flag a case first; `wait` is context (kernbench.contention)
    parts = [f"{text} {num(found.get(key)):.0%}" for key, text in (
        ("other_cpu", "other processes used"), ("steal", "the hypervisor stole"),
        ("wait", "its threads waited for a CPU")) if num(found.get(key)) is not None]
    return "; ".join(parts) or "no figures recorded"


def _int(value: Any) -> int | None:
    v = num(value)
    return int(v) if v is not None and math.isfinite(v) else None


def _throughput(case: dict, ceilings: dict) -> tuple[float | None, str, str]:
    """GFLOP/s for a compute-bound case, GB/s for a memory-bound one (by the roofline at the
    case's intensity; without ceilings, by intensity alone)."""
    gflops, gbps, intensity = (num(case.get(k)) for k in ("gflops", "gbps", "intensity"))
    peak_gflops, peak_gbps = ceiling_for(ceilings, str(case.get("device") or "cpu"),
                                         str(case.get("dtype")))
    if intensity is not None and peak_gflops and peak_gbps:
        compute_bound = peak_gbps * intensity >= peak_gflops
    else:
        compute_bound = intensity is not None and intensity > 4
    if compute_bound and gflops:
        return gflops, "GFLOP/s", "compute"
    if gbps:
        return gbps, "GB/s", "memory"
    return None, "", ""


def _reason(case: dict) -> str | None:
    reason = case.get("reason")
    return str(reason) if reason not in (None, "") else None


def _memory_cell(case: dict) -> MemoryCell:
    m = sub(case, "memory")
    method = m.get("method")
    return MemoryCell(label_of(case), str(case.get("status")), num(m.get("peak_bytes")),
                      num(m.get("output_bytes")), num(m.get("io_bytes")),
                      str(method) if method else None, _reason(case))


def _compile_cell(case: dict) -> CompileCell:
    comp = sub(case, "compile")
    return CompileCell(label_of(case), str(case.get("status")), num(case.get("compile_s")),
                       num(comp.get("cold_s")), num(comp.get("warm_s")), num(comp.get("graphs")),
                       num(comp.get("graph_breaks")), num(comp.get("recompiles")), _reason(case))


def _point(case: dict) -> AccuracyPoint:
    a = sub(case, "accuracy")
    passed = a.get("passed")
    worst = a.get("worst_output")
    rel = a.get("rel_l2")
    nonfinite = num(a.get("nonfinite"))
    # NaN is written as null: with non-finite outputs the error is unbounded, not unknown
    rel_l2 = num(rel) if rel is not None or not nonfinite else math.inf
    return AccuracyPoint(label_of(case), str(case.get("dtype")), params_text(case),
                         str(case.get("status")), rel_l2, num(a.get("max_ulp")),
                         num(a.get("max_abs")), num(a.get("tolerance")),
                         passed if isinstance(passed, bool) else None, nonfinite,
                         str(worst) if worst else None)


def _worst(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _accuracy_rows(points: list[AccuracyPoint], labels: list[str],
                   dtypes: list[str]) -> list[AccuracyRow]:
    rows = []
    for lab in labels:
        cells: dict[str, AccuracyCell] = {}
        for dt in dtypes:
            mine = [p for p in points if p.label == lab and p.dtype == dt]
            if not mine:
                continue
            cells[dt] = AccuracyCell(
                n=len(mine), passed=sum(1 for p in mine if p.passed),
                rel_l2=_worst(p.rel_l2 for p in mine),
                rel_l2_eps=_worst(p.rel_l2_eps for p in mine),
                max_ulp=_worst(p.max_ulp for p in mine),
                of_tolerance=_worst(p.of_tolerance for p in mine),
                nonfinite=_worst(p.nonfinite for p in mine))
        if not cells:
            continue
        present = [dt for dt in dtypes if dt in cells]
        growth = []
        for lo, hi in zip(present, present[1:]):
            a, b = cells[lo].rel_l2, cells[hi].rel_l2
            factor = b / a if a and b is not None and math.isfinite(a) else None
            growth.append((lo, hi, factor))
        rows.append(AccuracyRow(lab, cells, growth))
    return rows


def _problems(cases: list[dict], shape_rank) -> list[Problem]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in cases:
        if c.get("status") == "ok":
            continue
        key = (str(c.get("status")), label_of(c), str(c.get("dtype")), str(c.get("device")),
               str(c.get("mode") or "forward"), _reason(c) or "(no reason recorded)",
               flags_of(c))
        groups[key].append(c)
    problems = []
    for (status, lab, dtype, device, mode, reason, flags), members in groups.items():
        members.sort(key=lambda c: row_key(c, shape_rank))
        tb = next((str(c["traceback"]) for c in members if c.get("traceback")), None)
        problems.append(Problem(status, lab, dtype, device, mode,
                                [params_text(c) for c in members], reason, flags, tb,
                                [str(c.get("id")) for c in members]))
    rank = {s: i for i, s in enumerate(PROBLEM_ORDER)}
    problems.sort(key=lambda p: (rank.get(p.status, -1), backend_key(p.label),
                                 dtype_key(p.dtype)))
    return problems


def _summary(section: KernelSection) -> list[SummaryRow]:
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in section.speed.rows:
        groups[(row.key.dtype, row.key.device, row.key.mode)].append(row)
    out = []
    for (dtype, device, mode), rows in sorted(groups.items(),
                                               key=lambda kv: (kv[0][1], kv[0][2],
                                                               dtype_key(kv[0][0]))):
        present = sorted({lab for r in rows for lab in r.cells}, key=backend_key)
        ranked_rows: dict[str, list[Row]] = {lab: [r for r in rows if lab in r.cells
                                                   and r.cells[lab].ranked] for lab in present}
        coverage = max((len(v) for v in ranked_rows.values()), default=0)
        contenders = [lab for lab, v in ranked_rows.items() if coverage and len(v) == coverage]
        # the lowest geometric-mean time over the shapes every contender ran
        common = [r for r in rows if all(lab in r.cells and r.cells[lab].ranked
                                         for lab in contenders)]
        best = None
        if contenders and common:
            best = min(contenders,
                       key=lambda lab: geomean([r.cells[lab].median_s for r in common]) or 0)
        wins = sum(1 for r in rows if best in r.cells and _alone_or_fastest(r, best))
        over = {r.cells[lab].speedup_over for r in rows for lab in r.cells
                if r.cells[lab].speedup is not None} - {None}
        cells = {}
        for lab in present:
            speedups = [r.cells[lab].speedup for r in ranked_rows[lab]
                        if r.cells[lab].speedup is not None]
            note = ""
            if not speedups:
                note = _why_no_figure([r.cells[lab] for r in rows if lab in r.cells])
            cells[lab] = SummaryCell(lab, geomean(speedups), len(speedups), len(rows),
                                     lab == best, note)
        out.append(SummaryRow(section.kernel, dtype, device, mode, best, wins, len(rows),
                              ", ".join(sorted(over)), cells))
    return out


def _alone_or_fastest(row: Row, label: str) -> bool:
    ranked = [c for c in row.cells.values() if c.ranked]
    return row.cells[label].fastest or (len(ranked) == 1 and ranked[0].label == label)


def _why_no_figure(cells: list[SpeedCell]) -> str:
    """One word for a summary cell without a speedup: what its cases have in common."""
    reasons = set()
    for c in cells:
        if c.median_s is None:
            reasons.add(c.status)
        elif c.unranked:
            reasons.add(c.unranked[0])
        elif c.speedup is None:
            reasons.add("no reference")
    if not reasons:
        return ""
    order = ["interpreted", "suspect", "inaccurate", *PROBLEM_ORDER, "no reference"]
    return min(reasons, key=lambda r: order.index(r) if r in order else len(order))


def ceiling_text(header: dict) -> list[tuple[str, str]]:
    """The ceilings of each device as (device, text) pairs, for the run description."""
    out = []
    ceilings = header.get("ceilings")
    if not isinstance(ceilings, dict):
        return out
    for device, ceil in ceilings.items():
        if not isinstance(ceil, dict):
            continue
        parts = []
        for key, name in (("copy_gbps", "copy"), ("update_gbps", "in-place update"),
                          ("read_gbps", "read")):
            v = num(ceil.get(key))
            if v:
                parts.append(f"{name} {v:.3g} GB/s")
        gemm = ceil.get("gemm_gflops")
        if isinstance(gemm, dict):
            rates = [f"{dt} {num(v):.3g}" for dt, v in sorted(gemm.items(),
                                                              key=lambda kv: dtype_key(kv[0]))
                     if num(v)]
            if rates:
                parts.append("GEMM GFLOP/s: " + ", ".join(rates))
        if parts:
            out.append((str(device), "; ".join(parts)))
    return out
