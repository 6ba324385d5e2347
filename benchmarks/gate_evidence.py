"""Evidence for the regression gate (issue 7), run by hand, never by the tests:

- A/A: the same kernels against themselves. Any `regression` verdict is a false alarm. Every
  case is tested (in A/B mode the default gate would not test kernels whose code is identical
  on both sides, so an A/A job would test nothing; `every_case` is the harsher check).
- Injected: softmax's numpy and torch_eager implementations made slower by doing 25% more work
  (after computing the result, the same forward runs again on the first quarter of the rows of
  its first input, so matmul-like and softmax-like kernels alike do ~1.25x the work). Every
  injected case should come out `regression`; the rate that does is the detection rate.

Both in stored-baseline mode (two separate `kernbench run`s, gated with `kernbench gate`) and in
same-job A/B mode (`kernbench ab`: base and head interleaved in one job). Each repetition makes
fresh runs: stored mode runs base, A/A current and injected current one after another; A/B mode
runs an A/A job and an injected job. Results go to OUT/evidence.jsonl one repetition a line, so a
cut-off experiment can still be summarised (`--summarize`).

    .venv/bin/python benchmarks/gate_evidence.py --reps 20 --threads 1 --out results/gate-evidence

The suite is benchmarks/gate_evidence.toml (softmax and matmul, numpy and torch_eager, float32).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "gate_evidence.toml"
INJECTED_FILES = ("softmax_numpy.py", "softmax_torch.py")
INJECTED_LABELS = ("numpy", "torch_eager")
SLOWDOWN = 0.25

WRAPPER = '''

# --- injected by benchmarks/gate_evidence.py: {pct}% more work per call ---
_evidence_forward = forward


def forward(*args, **kwargs):
    out = _evidence_forward(*args, **kwargs)
    first = args[0]
    _evidence_forward(first[: max(1, int(first.shape[0] * {frac}))], *args[1:], **kwargs)
    return out
'''


def make_kernel_trees(tmp: Path) -> tuple[Path, Path, Path]:
    """Two pristine copies of the suite's kernels (distinct folders: base and head import
    separately in an A/B worker, as two revisions would) and an overlay folder holding the
    injected softmax."""
    trees = []
    for side in ("base", "head"):
        tree = tmp / side / "kernels"
        for name in ("softmax", "matmul"):
            shutil.copytree(ROOT / "kernels" / name, tree / name)
        trees.append(tree)
    injected = tmp / "injected"
    shutil.copytree(ROOT / "kernels" / "softmax", injected / "softmax")
    for name in INJECTED_FILES:
        path = injected / "softmax" / name
        path.write_text(path.read_text() + WRAPPER.format(pct=int(SLOWDOWN * 100),
                                                          frac=SLOWDOWN))
    return trees[0], trees[1], injected


def is_injected(c) -> bool:
    return c.kernel == "softmax" and c.backend in INJECTED_LABELS


def verdicts(base_path: Path, current_path: Path, every_case: bool = False) -> list[dict]:
    """Per-case verdicts of the default gate. `every_case`: test every case for a change, even
    those of kernels whose code is identical on both sides of an A/B run (which the default gate
    leaves out of the test, so an A/A job would test nothing): the harsher A/A."""
    from kernbench.compare import GatePolicy, compare
    from kernbench.results import read_run

    policy = GatePolicy(trust_code_hash=not every_case)
    result = compare(read_run(base_path), read_run(current_path), policy)
    return [{"id": c.id, "verdict": c.verdict, "ratio": c.ratio, "ci": c.ci,
             "threshold": c.threshold, "baseline_s": c.baseline_s, "injected": is_injected(c),
             "reasons": list(c.reasons)} for c in result.comparisons] + [
        {"notes": list(result.notes), "drift": result.drift}]


def one_rep(rep: int, out: Path, threads: int, base_tree: Path, head_tree: Path,
            injected: Path) -> dict:
    from kernbench.ab import ABOptions, ab_between
    from kernbench.run import RunOptions, execute_run

    folder = out / f"rep{rep:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    load = [os.getloadavg()[0]]
    t0 = time.time()

    def stored(name: str, extra: tuple[str, ...]) -> Path:
        return execute_run(RunOptions(suite=str(SUITE), output=str(folder / f"{name}.jsonl"),
                                      kernels_dirs=extra, threads=threads, calibrate="skip",
                                      progress=False))

    base = stored("base", ())
    aa = stored("aa", ())
    inj = stored("inj", (str(injected),))
    load.append(os.getloadavg()[0])
    opts = ABOptions(suite=str(SUITE), base_kernels=str(base_tree), threads=threads,
                     progress=False)
    ab_aa = ab_between(ABOptions(**{**opts.__dict__, "output": str(folder / "ab_aa")}),
                       [base_tree], [head_tree], "pristine copy")
    ab_inj = ab_between(ABOptions(**{**opts.__dict__, "output": str(folder / "ab_inj")}),
                        [base_tree], [head_tree, injected], "pristine copy")
    load.append(os.getloadavg()[0])
    return {"rep": rep, "threads": threads, "wall_s": time.time() - t0, "loadavg_1min": load,
            "stored_aa": verdicts(base, aa, every_case=True), "stored_inj": verdicts(base, inj),
            "ab_aa": verdicts(*ab_aa, every_case=True), "ab_inj": verdicts(*ab_inj)}


def recompute(record: dict, out: Path) -> dict:
    """The record's verdicts computed again from its run files (after a change to the gate)."""
    folder = out / f"rep{record['rep']:02d}"
    pairs = {"stored_aa": ("base.jsonl", "aa.jsonl"), "stored_inj": ("base.jsonl", "inj.jsonl"),
             "ab_aa": ("ab_aa/base.jsonl", "ab_aa/head.jsonl"),
             "ab_inj": ("ab_inj/base.jsonl", "ab_inj/head.jsonl")}
    return {**record, **{k: verdicts(folder / a, folder / b, every_case=k.endswith("_aa"))
                         for k, (a, b) in pairs.items()}}


def summarize(path: Path, again: bool = False) -> str:
    reps = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if again:
        reps = [recompute(r, path.parent) for r in reps]
    if not reps:
        return "no repetitions recorded"
    lines = [f"{len(reps)} repetitions from {path}; threads {reps[0]['threads']}; "
             f"1-min load average during the runs: "
             f"min {min(min(r['loadavg_1min']) for r in reps):.2f}, "
             f"max {max(max(r['loadavg_1min']) for r in reps):.2f} (2 cores)"]
    for mode in ("stored", "ab"):
        aa = [r[f"{mode}_aa"] for r in reps]
        inj = [r[f"{mode}_inj"] for r in reps]
        cases = lambda rep: [c for c in rep if "id" in c]  # noqa: E731
        false_runs = sum(any(c["verdict"] in ("regression", "failed") for c in cases(x))
                         for x in aa)
        false_cases = sum(c["verdict"] in ("regression", "failed") for x in aa for c in cases(x))
        n_cases = sum(len(cases(x)) for x in aa)
        verdict_counts: dict[str, int] = {}
        for x in aa:
            for c in cases(x):
                verdict_counts[c["verdict"]] = verdict_counts.get(c["verdict"], 0) + 1
        lines.append(f"[{mode}] A/A: {false_runs}/{len(aa)} runs with a false regression "
                     f"({false_cases}/{n_cases} case verdicts); verdicts {verdict_counts}")
        for label, keep in (("cases over 1 ms", lambda c: (c["baseline_s"] or 0) >= 1e-3),
                            ("all injected cases", lambda c: True)):
            hit = [c for x in inj for c in cases(x) if c["injected"] and keep(c)]
            caught = sum(c["verdict"] == "regression" for c in hit)
            ratios = sorted(c["ratio"] for c in hit if c["ratio"])
            med = ratios[len(ratios) // 2] if ratios else float("nan")
            lines.append(f"[{mode}] injected 25%, {label}: caught {caught}/{len(hit)} "
                         f"(median estimated ratio {med:.3f}; verdicts "
                         f"{_counts(c['verdict'] for c in hit)})")
        others = [c for x in inj for c in cases(x) if not c["injected"]]
        lines.append(f"[{mode}] injected runs, unchanged cases: "
                     f"{sum(c['verdict'] == 'regression' for c in others)}/{len(others)} "
                     f"false regressions")
    return "\n".join(lines)


def _counts(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "results" / "gate-evidence"))
    ap.add_argument("--summarize", action="store_true", help="only summarise OUT/evidence.jsonl")
    ap.add_argument("--recompute", action="store_true",
                    help="with --summarize: recompute the verdicts from the stored run files")
    args = ap.parse_args()
    out = Path(args.out)
    log = out / "evidence.jsonl"
    if not args.summarize:
        out.mkdir(parents=True, exist_ok=True)
        done = len(log.read_text().splitlines()) if log.exists() else 0
        with tempfile.TemporaryDirectory(prefix="kernbench-evidence-") as tmp:
            trees = make_kernel_trees(Path(tmp))
            for rep in range(done, args.reps):
                try:
                    record = one_rep(rep, out, args.threads, *trees)
                except Exception as exc:  # e.g. a kernel folder mid-edit by someone else
                    print(f"rep {rep + 1} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                    continue
                with open(log, "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(f"rep {rep + 1}/{args.reps} done in {record['wall_s']:.0f} s",
                      file=sys.stderr, flush=True)
    print(summarize(log, again=args.recompute))
    return 0


if __name__ == "__main__":
    sys.exit(main())
