"""Issue 9's figures from a GPU results file, as markdown: what the issue asks a GPU run to show.

    python benchmarks/gpu_figures.py RESULTS.jsonl [--device cuda:0]

- memory-bound rows (softmax, layer_norm, rms_norm, forward): per shape and dtype, the fastest
  ranked backend's GB/s as a fraction of the GPU's measured device-to-device copy bandwidth
  (the issue's target: at least 80%, as Triton's fused-softmax tutorial reaches), and Triton's
  own figure beside it;
- matmul (forward): Triton's TFLOP/s against torch's (cuBLAS) on the same shape and dtype
  (target in bfloat16: at least 70%), and each as a fraction of the measured GEMM rate;
- attention (forward): Triton's flash-attention TFLOP/s against torch's
  `scaled_dot_product_attention` (the `torch_eager` file; `torch_eager:manual` is the
  materialised softmax(QK^T)V and is not SDPA).

Reads only the results file: the ceilings are the ones `kernbench calibrate` measured on that
GPU as the run began (its header), and "ranked" is what the report ranks (status ok, accurate,
not interpreted or suspect), so a time missing its synchronisation cannot meet a target. A
figure the file does not hold reads "not measured", never a number. Exit 2 on a file that is
not a kernbench results file.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kernbench.errors import UsageError  # noqa: E402
from kernbench.metrics import ceiling_key, gemm_roof  # noqa: E402
from kernbench.report.model import is_ranked, label_of, params_text, unranked_why  # noqa: E402
from kernbench.report.units import fmt_percent, fmt_time  # noqa: E402
from kernbench.results import read_run  # noqa: E402

MEMORY_BOUND = ("softmax", "layer_norm", "rms_norm")
#: the issue's targets
COPY_TARGET = 0.80
CUBLAS_TARGET = 0.70
#: the backend whose time stands for the vendor library (cuBLAS, SDPA) on each kernel
LIBRARY = "torch_eager"


def _pct(x: float | None) -> str:
    return "not measured" if x is None else fmt_percent(x)


def _rate(case: dict | None, key: str, scale: float = 1.0) -> str:
    """`gbps` or `gflops` (times `scale`) of a case, or blank where there is no case."""
    return "" if case is None else f"{case[key] * scale:.0f}"


def _timed(case: dict | None) -> str:
    """Median with its spread, the way every kernbench table quotes a time."""
    if case is None:
        return "not measured"
    t = case["time"]
    return f"{fmt_time(t['median_s'])} (±{100 * (t.get('iqr_s') or 0) / t['median_s']:.0f}%)"


def _groups(cases: list[dict], kernel: str, device: str) -> dict[tuple[str, str], list[dict]]:
    """Forward cases of `kernel` on `device`, by (shape, dtype)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in cases:
        if (c.get("kernel") == kernel and c.get("mode", "forward") == "forward"
                and ceiling_key(str(c.get("device") or "")) == device):
            groups[(params_text(c), str(c.get("dtype")))].append(c)
    return groups


def _fastest(cases: list[dict], label: str | None, metric: str) -> dict | None:
    """The fastest ranked case (of backend `label`, or any) that has the figure `metric`."""
    ranked = [c for c in cases if is_ranked(c) and c.get(metric) is not None
              and (label is None or label_of(c) == label)]
    return min(ranked, key=lambda c: c["time"]["median_s"]) if ranked else None


def _unranked(cases: list[dict], label: str) -> str:
    """Why a backend has no figure: its status (or flags), or that it was not run."""
    mine = [c for c in cases if label_of(c) == label]
    if not mine:
        return "not measured"
    why = unranked_why(mine[0])
    return f"{mine[0].get('status')}{' (' + ', '.join(why) + ')' if why else ''}: not ranked"


def memory_rows(cases: list[dict], device: str, copy: float | None) -> list[str]:
    lines = ["| kernel | shape | dtype | fastest | median | GB/s | % of copy | ≥ 80% | "
             "triton GB/s | triton % of copy |", "|---|---|---|---|---|---|---|---|---|---|"]
    for kernel in MEMORY_BOUND:
        for (shape, dtype), group in sorted(_groups(cases, kernel, device).items()):
            best, tri = _fastest(group, None, "gbps"), _fastest(group, "triton", "gbps")
            frac = best["gbps"] / copy if best and copy else None
            tri_text = (f"{_rate(tri, 'gbps')} | {_pct(tri['gbps'] / copy if copy else None)}"
                        if tri else f"{_unranked(group, 'triton')} | ")
            lines.append(
                f"| {kernel} | {shape} | {dtype} | {label_of(best) if best else 'none ranked'} "
                f"| {_timed(best)} | {_rate(best, 'gbps')} | {_pct(frac)} | "
                f"{'' if frac is None else ('yes' if frac >= COPY_TARGET else 'no')} | "
                f"{tri_text} |")
    return lines


def versus_rows(cases: list[dict], device: str, kernel: str, gemm: dict,
                target: float | None) -> list[str]:
    """Triton against the library (torch_eager) per shape and dtype, in TFLOP/s."""
    lines = [f"| shape | dtype | triton | {LIBRARY} | triton TFLOP/s | {LIBRARY} TFLOP/s | "
             f"triton / {LIBRARY} | triton % of GEMM rate |"
             + (f" ≥ {100 * target:.0f}% |" if target else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|" if target else "")]
    for (shape, dtype), group in sorted(_groups(cases, kernel, device).items()):
        tri, lib = _fastest(group, "triton", "gflops"), _fastest(group, LIBRARY, "gflops")
        ratio = tri["gflops"] / lib["gflops"] if tri and lib else None
        roof, how = gemm_roof(gemm, dtype)
        of_roof = tri["gflops"] / roof if tri and roof else None
        verdict = ""
        if target:
            verdict = (" n/a |" if dtype != "bfloat16" else
                       f" {'' if ratio is None else ('yes' if ratio >= target else 'no')} |")
        lines.append(
            f"| {shape} | {dtype} | {_timed(tri) if tri else _unranked(group, 'triton')} | "
            f"{_timed(lib) if lib else _unranked(group, LIBRARY)} | "
            f"{_rate(tri, 'gflops', 1e-3)} | {_rate(lib, 'gflops', 1e-3)} | {_pct(ratio)} | "
            f"{_pct(of_roof)}{f' ({how})' if how and of_roof is not None else ''} |{verdict}")
    return lines


def figures(path: str, device: str = "cuda:0") -> str:
    run = read_run(path)
    ceilings = (run.header.get("ceilings") or {}).get(device) or {}
    copy = ceilings.get("copy_gbps")
    gemm = ceilings.get("gemm_gflops") or {}
    name = ceilings.get("name") or device
    if not ceilings:
        head = (f"{path}: no ceilings for {device} in the run header (calibrated with no GPU, or "
                f"--calibrate skip): fractions of copy and GEMM rate are not measured")
    else:
        rates = ", ".join(f"{k} {v / 1e3:.0f}" for k, v in gemm.items()
                          if isinstance(v, (int, float)))
        head = (f"{name} ({device}), measured as the run began: copy {copy:.0f} GB/s "
                f"(read + written), update {ceilings.get('update_gbps', 0):.0f} GB/s; "
                f"GEMM TFLOP/s: {rates}")
    cases = run.cases
    return "\n".join([
        head, "", "Memory-bound rows (forward): the fastest ranked backend against the copy "
        "bandwidth", "", *memory_rows(cases, device, copy), "",
        "Matmul (forward): Triton against cuBLAS (torch)", "",
        *versus_rows(cases, device, "matmul", gemm, CUBLAS_TARGET), "",
        "Attention (forward): Triton's flash attention against scaled_dot_product_attention",
        "", *versus_rows(cases, device, "attention", gemm, None)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--device", default="cuda:0")
    args = parser.parse_args(argv)
    try:
        print(figures(args.results, args.device))
    except UsageError as exc:
        print(f"gpu_figures: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
