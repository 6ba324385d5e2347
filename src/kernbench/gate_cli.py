"""Arguments of the gate's commands (`gate`, `ab`, `baseline save`, `export`), kept out of
cli.py so that file stays a list of one-line hooks; each command calls one function."""

from __future__ import annotations

import argparse

COMMANDS = ("gate", "ab", "baseline", "export")


def _policy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=float, metavar="FRACTION",
                   help="relative slowdown that counts, e.g. 0.1 (overrides the suite's "
                        "gate_threshold; default: the suite's, else 0.10)")
    p.add_argument("--kernel-threshold", action="append", default=[], metavar="KERNEL=FRACTION",
                   help="threshold for one kernel (repeatable)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="false discovery rate across cases, and 1 - confidence (default 0.05)")
    p.add_argument("--accuracy-growth", type=float, default=10.0, metavar="FACTOR",
                   help="fail when rel_l2 error grows by more than this factor (default 10)")
    p.add_argument("--memory-ratio", type=float, default=1.25,
                   help="fail when peak memory grows by more than this ratio (default 1.25)")
    p.add_argument("--allow-foreign", action="store_true",
                   help="give timing verdicts across machine fingerprints (exit 3 otherwise)")
    p.add_argument("--no-drift", action="store_true",
                   help="stored baseline: do not widen intervals by the between-run drift "
                        "estimated from unchanged kernels")
    p.add_argument("--markdown", metavar="FILE", help="write the markdown summary here")
    p.add_argument("--step-summary", action="store_true",
                   help="append the markdown summary to $GITHUB_STEP_SUMMARY")
    p.add_argument("--all", action="store_true", help="list unchanged cases too")


def add_parsers(sub) -> None:
    from .cli import positive_int

    p = sub.add_parser("gate", help="compare a run with a baseline; exit 1 on a real regression")
    p.add_argument("--current", required=True, metavar="RESULTS",
                   help="results file (.jsonl; or pytest-benchmark .json)")
    p.add_argument("--baseline", metavar="RESULTS|DIR",
                   help="results file, or baselines folder (default results/baselines: the "
                        "baseline of the current run's suite for this machine's fingerprint)")
    _policy_arguments(p)

    p = sub.add_parser("ab", help="run base and head kernels interleaved in one job, then gate")
    p.add_argument("suite")
    base = p.add_mutually_exclusive_group(required=True)
    base.add_argument("--base", metavar="REV", help="git revision whose kernels/ is the base")
    base.add_argument("--base-kernels", metavar="DIR", help="a folder of kernels as the base")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="folder for base.jsonl and head.jsonl (default results/ab-<suite>-<time>)")
    p.add_argument("--kernels", action="append", default=[], metavar="DIR")
    for name in ("kernel", "backend", "dtype", "device"):
        p.add_argument(f"--{name}", action="append", default=[],
                       help=f"only this {name} (repeatable)")
    p.add_argument("--threads", type=positive_int)
    p.add_argument("--allocator", default=None, metavar="TUNABLES")
    p.add_argument("--no-progress", action="store_true")
    _policy_arguments(p)

    p = sub.add_parser("baseline", help="store a run as this machine's baseline")
    bsub = p.add_subparsers(dest="baseline_command", required=True, parser_class=type(p))
    s = bsub.add_parser("save", help="store RESULTS under results/baselines/<fingerprint>/")
    s.add_argument("results")
    s.add_argument("--root", default="results/baselines", metavar="DIR")

    p = sub.add_parser("export", help="write a results file in pytest-benchmark's JSON format")
    p.add_argument("results")
    p.add_argument("-o", "--output", required=True, metavar="FILE.json")
    p.add_argument("--format", default="pytest-benchmark", choices=("pytest-benchmark",))


def _policy(args: argparse.Namespace):
    from .compare import GatePolicy
    from .errors import UsageError

    per_kernel = {}
    for item in args.kernel_threshold:
        name, sep, value = item.partition("=")
        try:
            per_kernel[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise UsageError(f"--kernel-threshold: expected KERNEL=FRACTION, got {item!r}")
    kwargs = {"alpha": args.alpha, "accuracy_growth": args.accuracy_growth,
              "memory_ratio": args.memory_ratio, "per_kernel": per_kernel,
              "allow_foreign": args.allow_foreign, "drift": not args.no_drift}
    if args.threshold is not None:
        kwargs.update(threshold=args.threshold, use_suite_thresholds=False)
    try:
        return GatePolicy(**kwargs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def dispatch(args: argparse.Namespace) -> int:
    from .errors import EXIT_OK

    if args.command == "gate":
        from .gate import GateOptions, run_gate

        return run_gate(GateOptions(current=args.current, baseline=args.baseline,
                                    policy=_policy(args), markdown=args.markdown,
                                    step_summary=args.step_summary, show_all=args.all))
    if args.command == "ab":
        import sys

        from .ab import ABOptions, execute_ab
        from .gate import GateOptions, run_gate

        policy = _policy(args)
        if args.markdown:  # before the sweep, not after it
            from pathlib import Path

            from .ab import result_files
            from .paths import writable_file

            # the suite, and the results ab writes into a folder -o names, are its inputs
            ab_files = result_files(Path(args.output)) if args.output else ()
            writable_file(args.markdown, "--markdown", inputs=[args.suite, *ab_files])
        base, head = execute_ab(ABOptions(
            suite=args.suite, base=args.base, base_kernels=args.base_kernels, output=args.output,
            kernels_dirs=tuple(args.kernels), kernel=tuple(args.kernel),
            backend=tuple(args.backend), dtype=tuple(args.dtype), device=tuple(args.device),
            threads=args.threads, allocator=args.allocator, progress=not args.no_progress))
        print(f"kernbench ab: {base} and {head}", file=sys.stderr)
        return run_gate(GateOptions(current=str(head), baseline=str(base), policy=policy,
                                    markdown=args.markdown, step_summary=args.step_summary,
                                    show_all=args.all))
    if args.command == "baseline":
        from .gate import save_baseline

        print(save_baseline(args.results, args.root))
        return EXIT_OK
    if args.command == "export":
        from .pytest_bench import export

        n = export(args.results, args.output)
        print(f"kernbench: {n} benchmarks -> {args.output}")
        return EXIT_OK
    raise AssertionError(args.command)  # pragma: no cover - COMMANDS lists what is handled
