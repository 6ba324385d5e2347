"""Accuracy of one output against its float64 reference.

The check is built so that a kernel which does nothing cannot pass: the main criterion is the
relative L2 error ||out - ref|| / ||ref||, which is 1 for an all-zero output, O(1) for a constant
or for the input itself, and NaN (a failure) when any value is non-finite. A shape mismatch fails
before any arithmetic.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from .dtypes import get_format


@dataclass(frozen=True)
class Tolerance:
    """Allowed relative L2 error, in units of the output dtype's machine epsilon.

    `rel_l2_eps` of 8 on float32 means ||out-ref||/||ref|| <= 8 * 2**-23. `floor` is an absolute
    lower bound on the allowed rel_l2 for formats where eps-scaling is too strict (float64 kernels
    that sum many terms)."""

    rel_l2_eps: float
    floor: float = 0.0

    def bound(self, dtype: str) -> float:
        return max(self.rel_l2_eps * get_format(dtype).eps, self.floor)


@dataclass(frozen=True)
class OutputError:
    name: str
    max_abs: float
    rel_l2: float
    max_ulp: float
    nonfinite: int
    tolerance: float
    passed: bool
    reason: str | None = None

    def to_dict(self) -> dict:
        return {k: _json_float(v) for k, v in asdict(self).items()}


def _json_float(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def compare(name: str, out: np.ndarray, ref: np.ndarray, dtype: str, bound: float,
            threads: int = 1) -> OutputError:
    """Compare `out` (already float64) with `ref`; `dtype`: the format the output was stored in.
    `threads` > 1 compares slices in that many threads: the same figures, since each slice's
    sums are added in slice order whichever thread computed them."""
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        return OutputError(name, math.inf, math.inf, math.inf, 0, bound, False,
                           f"shape {out.shape} != reference shape {ref.shape}")
    return _compare(name, out, ref, dtype, bound, threads)


#: Elements compared per pass. Every figure is a sum, a count or a maximum, so the arrays are
#: walked in slices whose float64 temporaries (a dozen of them) stay in the CPU's caches: whole-
#: array temporaries cost 1 GiB each at a 32768 x 4096 output, and comparing two such outputs
#: took 18 of a case's 26 s (the timed part 1.7 s), mostly in page faults.
CHUNK_ELEMENTS = 1 << 17


def _slice_figures(o: np.ndarray, r: np.ndarray, fmt) -> tuple[int, int, float, float, float,
                                                                  float]:
    """(non-finite outputs, mismatched special values, sum of ref², sum of error², max |error|,
    max error in ULPs) of one slice."""
    ref_finite = np.isfinite(r)
    nonfinite = int(np.count_nonzero(~np.isfinite(o) & ref_finite))
    mismatched = 0
    if ref_finite.all():  # the usual slice: no special value to match
        diff = finite_diff = np.abs(o - r)
        finite_ref = r
    else:
        # where the reference itself is ±inf or NaN the output must be the same special
        # value (exact: no error); anything else there, a finite number or the other
        # infinity, is as wrong as a NaN where the reference is finite
        same_special = ~ref_finite & ((o == r) | (np.isnan(o) & np.isnan(r)))
        mismatched = int(np.count_nonzero(~ref_finite & ~same_special))
        diff = np.where(ref_finite, np.abs(o - r), np.inf)
        diff[same_special] = 0.0
        finite_ref = np.where(ref_finite, r, 0.0)
        finite_diff = np.where(ref_finite, diff, 0.0)
    ulps = diff / fmt.ulp(finite_ref)
    # einsum's own loops, not BLAS's dot: a BLAS call from each of several threads starts
    # BLAS's whole thread pool per call, and the cores oversubscribed, two threads compared a
    # 32768 x 4096 output no faster than one (2.4-3.0 s against 2.7 on the 2-core VM)
    return (nonfinite, mismatched, float(np.einsum("i,i->", finite_ref, finite_ref)),
            float(np.einsum("i,i->", finite_diff, finite_diff)), float(diff.max()),
            float(np.max(np.where(np.isnan(ulps), np.inf, ulps))))


def _compare(name, out, ref, dtype, bound, threads=1) -> OutputError:
    fmt = get_format(dtype)
    out, ref = out.reshape(-1), ref.reshape(-1)
    starts = range(0, out.size, CHUNK_ELEMENTS)

    def figures(start: int) -> tuple:
        with np.errstate(invalid="ignore", over="ignore"):
            return _slice_figures(out[start:start + CHUNK_ELEMENTS],
                                  ref[start:start + CHUNK_ELEMENTS], fmt)

    if threads > 1 and len(starts) > 1:  # NumPy releases the GIL inside each operation
        with ThreadPoolExecutor(min(threads, len(starts))) as pool:
            per_slice = list(pool.map(figures, starts))
    else:
        per_slice = [figures(start) for start in starts]
    nonfinite = sum(f[0] for f in per_slice)
    mismatched = sum(f[1] for f in per_slice)
    ref_sq = sum((f[2] for f in per_slice), 0.0)
    err_sq = sum((f[3] for f in per_slice), 0.0)
    chunk_max_abs = [0.0, *(f[4] for f in per_slice)]
    chunk_max_ulp = [0.0, *(f[5] for f in per_slice)]
    # np.max, not max(): a NaN (an output NaN where the reference is finite) must propagate
    max_abs, max_ulp = float(np.max(chunk_max_abs)), float(np.max(chunk_max_ulp))
    ref_norm, err_norm = math.sqrt(ref_sq), math.sqrt(err_sq)
    if nonfinite or mismatched:
        rel_l2 = math.nan
    elif ref_norm == 0.0:
        rel_l2 = 0.0 if err_norm == 0.0 else math.inf
    else:
        rel_l2 = err_norm / ref_norm
    passed = nonfinite == 0 and mismatched == 0 and math.isfinite(rel_l2) and rel_l2 <= bound
    reason = None
    if nonfinite:
        reason = f"{nonfinite} non-finite values where the reference is finite"
    elif mismatched:
        reason = f"{mismatched} values differ where the reference is inf or NaN"
    elif not passed:
        reason = f"rel_l2 {rel_l2:.3g} > tolerance {bound:.3g}"
    return OutputError(name, max_abs, rel_l2, max_ulp, nonfinite, bound, passed, reason)


def summarize(errors: list[OutputError]) -> dict:
    """The case's accuracy record: the worst output's figures at top level, each output listed."""
    worst = max(errors, key=lambda e: (not e.passed,
                                       _sortable(e.rel_l2 / max(e.tolerance, 1e-300))))
    record = worst.to_dict()
    record.pop("name")
    record["passed"] = all(e.passed for e in errors)
    record["worst_output"] = worst.name
    record["outputs"] = [e.to_dict() for e in errors]
    return record


def _sortable(x: float) -> float:
    return math.inf if math.isnan(x) else x
