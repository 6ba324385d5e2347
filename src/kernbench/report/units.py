"""Numbers as people read them: times, bytes, rates, ratios, errors.

One place for every unit and rounding rule, so the terminal table, the markdown summary and the
HTML report print the same figure the same way. Values read from a results file may be missing,
non-numeric or written as the strings "inf"/"-inf" (JSON has no infinity): `num` turns all of
them into a float or None, and every formatter accepts None.
"""

from __future__ import annotations

import math
from typing import Any

#: Shown where a figure is absent (a failed case, a field an older run did not record).
MISSING = "—"


def num(value: Any) -> float | None:
    """A float from a results-file value, or None. Booleans are not numbers here."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", "-inf"):
        return -math.inf if value.strip().startswith("-") else math.inf
    return None


def fmt_time(seconds: float | None) -> str:
    """`14.8 µs`, `2.31 ms`, `13.2 s`: three significant digits."""
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_bytes(n: float | None) -> str:
    """Binary units, as memory is allocated: `64 KiB`, `1.5 MiB`."""
    if n is None or not math.isfinite(n):
        return MISSING
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} TiB"  # pragma: no cover - the loop returns at GiB


def fmt_ratio(x: float | None) -> str:
    """A speedup or a ratio of times: `1.23×`, `0.045×`, `120×`."""
    if x is None or not math.isfinite(x):
        return MISSING
    if x >= 100:
        return f"{x:.0f}×"
    return f"{x:#.3g}".rstrip(".") + "×"  # keep trailing zeros: 1.00×, 0.500×


def fmt_rate(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:.3g} {unit}"


def fmt_percent(fraction: float | None) -> str:
    if fraction is None or not math.isfinite(fraction):
        return MISSING
    pct = 100.0 * fraction
    return f"{pct:.0f}%" if pct >= 1 else f"{pct:.2g}%"


def fmt_sci(x: float | None) -> str:
    """An error figure: `1.16e-07`, `0` when exact, `inf`, `NaN` when the run recorded none."""
    if x is None:
        return MISSING
    if math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    return f"{x:.3g}" if 1e-2 <= abs(x) < 1e4 else f"{x:.2e}"


def fmt_count(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return MISSING
    return f"{x:.0f}"


def geomean(values: list[float]) -> float | None:
    """Geometric mean of positive finite values; None when there are none."""
    logs = [math.log(v) for v in values if v is not None and math.isfinite(v) and v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else None
