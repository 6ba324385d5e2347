"""`kernbench show`: a terminal (or markdown) table of a results file.

Per kernel, shape and dtype: each backend's median time (with IQR), speedup over numpy, GB/s or
GFLOP/s with the fraction of this machine's ceiling, and whether accuracy passed. Interpreted
timings (Triton on a CPU) are shown but never ranked or used for speedups."""

from __future__ import annotations

from collections import defaultdict

from .results import latest_by_id, read_run
from .spec import format_params


def fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def cell(case: dict, baseline: float | None) -> str:
    status = case["status"]
    if status != "ok" and not (status == "failed" and case.get("time")):
        return status
    t = case["time"]
    text = fmt_time(t["median_s"])
    if t["median_s"]:
        text += f" ±{100 * t['iqr_s'] / t['median_s']:.0f}%"
    flags = case.get("flags") or []
    if "interpreted" in flags:
        return text + " (interp)"
    if baseline and t["median_s"]:
        text += f" {baseline / t['median_s']:.2f}x"
    rate = throughput(case)
    if rate:
        text += f" {rate}"
    if "suspect" in flags:
        text += " SUSPECT"
    acc = case.get("accuracy") or {}
    text += "" if acc.get("passed") else " INACCURATE"
    return text


def throughput(case: dict) -> str:
    frac = case.get("roofline_fraction")
    frac_txt = f" ({100 * frac:.0f}%)" if frac is not None else ""
    if case.get("intensity") is not None and case["intensity"] > 4 and case.get("gflops"):
        return f"{case['gflops']:.3g} GF/s{frac_txt}"
    if case.get("gbps"):
        return f"{case['gbps']:.3g} GB/s{frac_txt}"
    return ""


def table(path: str, markdown: bool = False) -> str:
    run = read_run(path)
    cases = list(latest_by_id(run.cases).values())
    groups: dict[tuple, dict[str, dict]] = defaultdict(dict)
    labels: dict[str, list[str]] = defaultdict(list)
    for c in cases:
        label = f"{c['backend']}:{c['variant']}" if c.get("variant") else c["backend"]
        key = (c["kernel"], c.get("mode", "forward"), format_params(c["params"]), c["dtype"],
               c["device"])
        groups[key][label] = c
        if label not in labels[c["kernel"]]:
            labels[c["kernel"]].append(label)
    h = run.header
    lines = [f"run {h.get('run_id')}  suite {h.get('suite')}  {h.get('started')}  "
             f"{(h.get('machine') or {}).get('cpu')}  threads "
             f"{(h.get('settings') or {}).get('threads')}"]
    cpu = (h.get("ceilings") or {}).get("cpu")
    if cpu:
        gemm = ", ".join(f"{k} {v:.0f}" for k, v in cpu.get("gemm_gflops", {}).items())
        lines.append(f"ceilings: copy {cpu.get('copy_gbps', 0):.1f} GB/s, read "
                     f"{cpu.get('read_gbps', 0):.1f} GB/s, GEMM GFLOP/s: {gemm}")
    lines.append("cells: median ±IQR/median, speedup over numpy (over numpy float32 where numpy "
                 "lacks the dtype), throughput (% of ceiling)")
    for kernel in sorted(labels):
        cols = labels[kernel]
        header = ["mode", "params", "dtype", "device", *cols]
        rows = []
        for key in sorted(k for k in groups if k[0] == kernel):
            row = groups[key]
            baseline = _same_shape_numpy(groups, key)
            rows.append([key[1], key[2], key[3], key[4],
                         *(cell(row[c], baseline) if c in row else "" for c in cols)])
        lines.append("")
        lines.append(f"== {kernel}")
        lines.extend(_render(header, rows, markdown))
    return "\n".join(lines)


def _same_shape_numpy(groups, key) -> float | None:
    """numpy's median for the same shape, in float32 when this dtype has no numpy case."""
    for dtype in (key[3], "float32"):
        row = groups.get((key[0], key[1], key[2], dtype, key[4]), {})
        c = row.get("numpy")
        if c and c["status"] == "ok":
            return c["time"]["median_s"]
    return None


def _render(header: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return out
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header), fmt.format(*("-" * w for w in widths)),
            *(fmt.format(*r) for r in rows)]
