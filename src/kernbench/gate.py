"""`kernbench gate` and `kernbench baseline save`: verdicts to exit codes, tables and summaries.

The verdicts themselves come from kernbench.compare; this module finds the baseline, prints the
terminal table (sorted by effect size, what needs attention first), writes the markdown summary
(a PR comment or `$GITHUB_STEP_SUMMARY`) and maps the outcome to the exit code:

    0  pass: no regression and no failed exact gate
    1  a regression, or an exact gate failed (accuracy, a case now failing/crashing/timing out,
       torch.compile recompiles or graph breaks up, peak memory up)
    2  usage or input error (bad arguments, unreadable results file, no baseline)
    3  not comparable: different machine fingerprint, threads or allocator (timing verdicts
       refused; `--allow-foreign` compares anyway), or no case in common

Baselines live under results/baselines/<fingerprint>/<suite>.jsonl (committed), next to a
machine.json that says in words which machine and library versions the fingerprint stands for.
A stored baseline is a second job's run: prefer `kernbench ab` in CI (see kernbench.ab).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .compare import Comparison, GatePolicy, GateResult, compare, timing_text
from .errors import EXIT_FAILURE, EXIT_NOT_COMPARABLE, EXIT_OK, UsageError
from .paths import same_file, writable_file, writable_folder, write_output
from .results import RunFile, read_run

BASELINE_ROOT = Path("results") / "baselines"
#: Verdict order in tables: what needs attention first.
RANK = {"failed": 0, "regression": 1, "inconclusive": 2, "improvement": 3, "new": 4,
        "missing": 5, "same": 6}


@dataclass
class GateOptions:
    current: str
    baseline: str | None = None  # a results file, a baselines folder, or None: this machine's
    policy: GatePolicy = field(default_factory=GatePolicy)
    markdown: str | None = None  # write the markdown summary here
    step_summary: bool = False  # append it to $GITHUB_STEP_SUMMARY too
    root: str = str(BASELINE_ROOT)
    show_all: bool = False  # list `same` cases in the terminal table too


# -- loading ------------------------------------------------------------------------------------
def load_results(path: str | Path) -> RunFile:
    """A kernbench results file, or a pytest-benchmark JSON file (converted)."""
    path = Path(path)
    if path.suffix == ".json" and path.is_file():
        from .pytest_bench import from_pytest_benchmark

        return from_pytest_benchmark(path)
    return read_run(path)


def baseline_path(current: RunFile, given: str | None, root: str | Path = BASELINE_ROOT) -> Path:
    """The baseline for `current`: `given` if it is a file; else <folder>/<fingerprint>/
    <suite>.jsonl under `given` (or the baselines root). A missing one is a UsageError."""
    suite = current.header.get("suite") or "suite"
    fp = current.header.get("fingerprint") or "unknown"
    if given is not None and Path(given).is_file():
        return Path(given)
    folder = Path(given) if given is not None else Path(root)
    if given is not None and not folder.is_dir():
        raise UsageError(f"--baseline {given}: no such file or folder")
    for candidate in (folder / fp / f"{suite}.jsonl", folder / f"{suite}.jsonl"):
        if candidate.is_file():
            return candidate
    others = sorted(str(p.relative_to(folder)) for p in folder.glob(f"*/{suite}.jsonl"))
    hint = (f"; baselines of suite {suite!r} exist for other machines: {', '.join(others)} "
            f"(compare with --baseline FILE --allow-foreign)") if others else ""
    raise UsageError(f"{folder / fp / (suite + '.jsonl')}: no baseline for suite {suite!r} on "
                     f"this machine (fingerprint {fp}); save one with `kernbench baseline save "
                     f"RESULTS`{hint}")


def save_baseline(results: str | Path, root: str | Path = BASELINE_ROOT) -> Path:
    """Store a run as the baseline of its suite for its machine fingerprint."""
    run = read_run(results)
    fp, suite = run.header.get("fingerprint"), run.header.get("suite")
    if not fp or not suite:
        raise UsageError(f"{results}: the run header has no fingerprint or suite")
    ok = sum(1 for c in run.cases if c.get("status") == "ok")
    if ok == 0:
        raise UsageError(f"{results}: no case is ok; a baseline needs measured cases")
    folder = writable_folder(Path(root) / fp, "--root")
    target = folder / f"{suite}.jsonl"
    if same_file(results, target):
        raise UsageError(f"{results} is already the stored baseline of suite {suite!r} for "
                         f"this fingerprint")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(results, target)
    h = run.header
    machine = {"fingerprint": fp, "cpu": (h.get("machine") or {}).get("cpu"),
               "cores": (h.get("machine") or {}).get("cores"),
               "gpus": [g.get("name") for g in (h.get("machine") or {}).get("gpus") or []],
               "software": h.get("software"), "saved_from": str(results),
               "run_id": h.get("run_id"), "started": h.get("started"), "git": h.get("git")}
    (folder / "machine.json").write_text(json.dumps(machine, indent=1) + "\n")
    return target


# -- the command ----------------------------------------------------------------------------------
def run_gate(opts: GateOptions, out: TextIO | None = None) -> int:
    """Compare, print the table, write the summaries; return the exit code."""
    out = out or sys.stdout
    current = load_results(opts.current)
    base_file = baseline_path(current, opts.baseline, opts.root)
    if opts.markdown:  # checked before comparing: a bad path fails before any output
        writable_file(opts.markdown, "--markdown", inputs=[opts.current, base_file])
    base = load_results(base_file)
    result = compare(base, current, opts.policy)
    code = exit_code(result)
    out.write(terminal(result, show_all=opts.show_all) + "\n")
    md = markdown(result, code)
    if opts.markdown:
        write_output(Path(opts.markdown), md)
    if opts.step_summary:
        target = os.environ.get("GITHUB_STEP_SUMMARY")
        if target:
            with open(target, "a", encoding="utf-8") as f:
                f.write(md + "\n")
    return code


def exit_code(result: GateResult) -> int:
    if result.failed:
        return EXIT_FAILURE
    common = [c for c in result.comparisons if c.verdict not in ("new", "missing")]
    if not result.comparable or not common:
        return EXIT_NOT_COMPARABLE
    return EXIT_OK


def ordered(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """What needs attention first, then by effect size."""
    return sorted(comparisons, key=lambda c: (RANK[c.verdict], -c.effect, c.id))


def outcome_line(result: GateResult, code: int) -> str:
    counts = {k: v for k, v in result.counts().items() if v}
    text = ", ".join(f"{n} {v}" for v, n in counts.items())
    word = {EXIT_OK: "PASS", EXIT_FAILURE: "FAIL", EXIT_NOT_COMPARABLE: "NOT COMPARABLE"}[code]
    return f"kernbench gate: {word} ({text or 'no cases'}; mode {result.mode})"


def terminal(result: GateResult, show_all: bool = False) -> str:
    """The table for a terminal or a CI log: one line per case, failing lines first and
    complete (they name the case and the reason)."""
    lines = [f"baseline: {result.baseline}", f"current:  {result.current}"]
    lines += [f"note: {n}" for n in result.notes]
    rows = [c for c in ordered(result.comparisons)
            if show_all or (c.verdict not in ("same", "missing") and not _untimed(c))]
    if rows:
        lines.append(f"{'verdict':<12} {'ratio':>7} {'CI':>15} {'thr':>5} {'noise':>6}  case")
    for c in rows:
        ratio = f"{c.ratio:.3f}" if c.ratio is not None else "-"
        ci = f"{c.ci[0]:.3f}-{c.ci[1]:.3f}" if c.ci and all(map(math.isfinite, c.ci)) else (
            "unbounded" if c.ci else "-")
        thr = f"{c.threshold:.0%}" if c.threshold is not None else "-"
        noise = f"{math.expm1(c.noise):.1%}" if c.noise is not None else "-"
        lines.append(f"{c.verdict:<12} {ratio:>7} {ci:>15} {thr:>5} {noise:>6}  {c.id}")
        if c.reasons and c.verdict not in ("same",):
            lines.append(f"{'':<12} {'':>7} {'':>15} {'':>5} {'':>6}    " + "; ".join(c.reasons))
    hidden = len(result.comparisons) - len(rows)
    if hidden:
        lines.append(f"({hidden} same, missing or untimed (interpreted) cases not listed; "
                     f"--all lists them)")
    failing = [c for c in ordered(result.comparisons) if c.failing]
    for c in failing:
        lines.append(c.line())
    lines.append(outcome_line(result, exit_code(result)))
    return "\n".join(lines)


def _untimed(c: Comparison) -> bool:
    """An inconclusive case that was never timed on purpose (an interpreted backend)."""
    return c.verdict == "inconclusive" and c.ratio is None and any(
        r.startswith("interpreted backend") for r in c.reasons)


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace(
        "\n", " ")


def markdown(result: GateResult, code: int | None = None) -> str:
    """A summary for a pull-request comment or `$GITHUB_STEP_SUMMARY`."""
    code = exit_code(result) if code is None else code
    icon = {EXIT_OK: "✅", EXIT_FAILURE: "❌", EXIT_NOT_COMPARABLE: "⚠️"}[code]
    mode = ("same-job A/B (paired, interleaved)" if result.mode == "paired"
            else "stored baseline (two separate runs)")
    lines = [f"## {icon} {_md(outcome_line(result, code))}", "",
             f"Baseline `{_md(result.baseline)}` vs current `{_md(result.current)}`; {mode}.", ""]
    if result.notes:
        lines += [f"- {_md(n)}" for n in result.notes] + [""]
    attention = [c for c in ordered(result.comparisons)
                 if c.verdict in ("failed", "regression", "improvement")]
    header = ["| verdict | case | change | threshold | why |", "|---|---|---|---|---|"]
    if attention:
        lines += ["### Needs attention" if any(c.failing for c in attention) else
                  "### Changes", ""] + header
        lines += [_md_row(c) for c in attention] + [""]
    else:
        lines += ["No regression, failure or improvement.", ""]
    rest = [c for c in ordered(result.comparisons) if c not in attention]
    if rest:
        lines += [f"<details><summary>All other cases ({len(rest)})</summary>", ""] + header
        lines += [_md_row(c) for c in rest] + ["", "</details>", ""]
    lines.append("Exit codes: 0 pass, 1 regression or failed gate, 2 usage error, "
                 "3 not comparable. Inconclusive never fails the build.")
    return "\n".join(lines) + "\n"


def _md_row(c: Comparison) -> str:
    thr = f"{c.threshold:.0%}" if c.threshold is not None else ""
    return (f"| **{c.verdict}** | `{_md(c.id)}` | {_md(timing_text(c))} | {thr} | "
            f"{_md('; '.join(c.reasons))} |")
