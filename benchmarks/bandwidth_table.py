"""Issue 3's table: for each algorithm, its largest shape in a results file (by the spec's byte
count), the fastest ranked backend there and its throughput against the run's measured copy
bandwidth.

    python benchmarks/bandwidth_table.py RESULTS.jsonl [--dtype float32] [--mode forward]

Reads only the results file (its header holds the ceilings `kernbench calibrate` measured at
the start of the run). "Ranked" is what the report ranks: status ok (not inaccurate) and
not flagged suspect or interpreted. An algorithm is memory-bound when its arithmetic intensity
(flops per byte of minimum traffic) is below the ridge point, the float32 GEMM rate over the
copy bandwidth. Medians are quoted with the case's IQR / median as the spread.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kernbench.results import read_run  # noqa: E402


def label(case: dict) -> str:
    return case["backend"] + (f":{case['variant']}" if case.get("variant") else "")


def table(path: str, dtype: str, mode: str) -> str:
    run = read_run(path)
    cpu = (run.header.get("ceilings") or {}).get("cpu") or {}
    copy = cpu.get("copy_gbps")
    gemm = (cpu.get("gemm_gflops") or {}).get("float32")
    if not copy or not gemm:
        raise SystemExit(f"{path}: no CPU ceilings in the header (run without --calibrate skip)")
    ridge = gemm / copy
    by_kernel: dict[str, list[dict]] = defaultdict(list)
    for case in run.cases:
        if case["dtype"] == dtype and case["mode"] == mode and case["device"] == "cpu":
            by_kernel[case["kernel"]].append(case)
    lines = [f"Ceilings measured at the start of the run: copy {copy:.1f} GB/s, read "
             f"{cpu.get('read_gbps', 0):.1f} GB/s, float32 GEMM {gemm:.0f} GFLOP/s "
             f"(ridge {ridge:.1f} flop/byte); threads {cpu.get('threads')}", "",
             "| algorithm | largest shape | bound | best backend | median (IQR) | GB/s | "
             "% of copy | GFLOP/s | ranked / measured |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kernel in sorted(by_kernel):
        cases = by_kernel[kernel]
        biggest = max(c["byte_count"] or 0 for c in cases)
        at = [c for c in cases if (c["byte_count"] or 0) == biggest]
        shape = ",".join(f"{k}={v}" for k, v in at[0]["params"].items())
        ranked = [c for c in at if c["status"] == "ok"
                  and not {"interpreted", "suspect"} & set(c["flags"])]
        bound = "memory" if (at[0]["intensity"] or 0) < ridge else "compute"
        if not ranked:
            lines.append(f"| {kernel} | {shape} | {bound} | none ranked | | | | | 0 / {len(at)} |")
            continue
        best = min(ranked, key=lambda c: c["time"]["median_s"])
        t = best["time"]
        lines.append(
            f"| {kernel} | {shape} | {bound} | {label(best)} | {t['median_s'] * 1e3:.2f} ms "
            f"(±{100 * t['iqr_s'] / t['median_s']:.0f}%) | {best['gbps']:.1f} | "
            f"{100 * best['gbps'] / copy:.0f}% | {best['gflops']:.0f} | "
            f"{len(ranked)} / {len(at)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--mode", default="forward")
    args = parser.parse_args(argv)
    print(table(args.results, args.dtype, args.mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
