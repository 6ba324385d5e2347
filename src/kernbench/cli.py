"""The `kernbench` command. Each subcommand parses its arguments and calls one function, so every
command is callable from Python and testable without a subprocess. Bad input exits with code 2
and a one-line message."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import EXIT_OK, EXIT_USAGE, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors: one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def _positive(text: str, unit: str) -> float:
    """A positive, finite number of `unit`s, or argparse's usage error naming the unit."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of {unit}: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of {unit}, got {text}")
    return value


def _gib(text: str) -> int:
    """--memory-limit GIB -> bytes; 0, negative or non-finite values are usage errors (0 would
    silently mean no limit, a negative one an invalid RLIMIT_AS in every worker)."""
    return int(_positive(text, "GiB") * 2**30)


def positive_seconds(text: str) -> float:
    """--timeout S: a positive, finite number of seconds."""
    return _positive(text, "seconds")


def positive_int(text: str) -> int:
    """--threads N, --calls N: a count of at least 1 (0 would silently mean "all cores" or
    "the default", a negative one an invalid OMP_NUM_THREADS in every worker)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kernbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="kernels and backends found, and whether each can run here")
    p.add_argument("--kernels", action="append", default=[], metavar="DIR")

    p = sub.add_parser("run", help="run a suite and write a results file")
    p.add_argument("suite")
    p.add_argument("-o", "--output", help="results file (default results/<suite>-<time>.jsonl)")
    p.add_argument("--kernels", action="append", default=[], metavar="DIR",
                   help="extra folder of kernels (also KERNBENCH_KERNELS)")
    for name in ("kernel", "backend", "dtype", "device", "mode"):
        p.add_argument(f"--{name}", action="append", default=[],
                       help=f"only this {name} (repeatable)")
    p.add_argument("--case", action="append", default=[], metavar="PATTERN",
                   help="only case ids matching this shell-style pattern (repeatable: any), "
                        "e.g. 'matmul/*/bfloat16/*/m=8192*'")
    p.add_argument("--threads", type=positive_int,
                   help="threads for every pool (default: all cores)")
    p.add_argument("--isolate", default=None, help="group (default) | case | none")
    p.add_argument("--calibrate", default="cached", choices=("cached", "force", "skip"),
                   help="ceilings: reuse this machine's cached figures, measure again, or skip")
    p.add_argument("--resume", metavar="RESULTS",
                   help="complete an interrupted run: skip the cases it holds, append the rest")
    p.add_argument("--shard", metavar="K/N", help="run only the K-th of N stable slices")
    p.add_argument("--dry-run", action="store_true", help="print the planned case ids and stop")
    p.add_argument("--memory-limit", type=_gib, metavar="GIB",
                   help="address-space limit per worker process, in GiB")
    p.add_argument("--allocator", default=None, metavar="TUNABLES",
                   help="GLIBC_TUNABLES for the workers ('' for glibc's defaults)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--profile", action="store_true",
                   help="also profile each measured case (small suites): results/profiles/")

    p = sub.add_parser("show", help="print a results file as a table")
    p.add_argument("results")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--reference", metavar="BACKEND",
                   help="speedups are over this backend (default numpy)")

    p = sub.add_parser("report", help="write a self-contained HTML report of results files "
                                      "(two or more: compare mode, each against the first)")
    p.add_argument("results", nargs="+")
    p.add_argument("-o", "--output", metavar="HTML",
                   help="default reports/<name of the last results file>.html")
    p.add_argument("--reference", metavar="BACKEND",
                   help="speedups are over this backend (default numpy)")
    p.add_argument("--no-plots", action="store_true", help="tables only (faster)")
    p.add_argument("--allow-foreign", action="store_true",
                   help="compare mode: timing verdicts even across machines or settings")

    p = sub.add_parser("merge", help="join shard results files of one sweep")
    p.add_argument("results", nargs="+")
    p.add_argument("-o", "--output", required=True)

    p = sub.add_parser("profile", help="profile one case in steady state: where its time goes")
    p.add_argument("case_id", nargs="?", metavar="CASE_ID",
                   help="e.g. softmax/torch_eager/cpu/float32/forward/rows=64,cols=128")
    p.add_argument("--kernel")
    p.add_argument("--backend", help="e.g. torch_compile or torch_eager:manual")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--params", default="", metavar="K=V,...", help="unset ones take defaults")
    p.add_argument("--kernels", action="append", default=[], metavar="DIR")
    p.add_argument("-o", "--out", default="results/profiles", metavar="DIR",
                   help="profiles folder, also tensorboard's logdir (default results/profiles)")
    p.add_argument("--calls", type=positive_int,
                   help="calls to profile (default: ~0.25 s worth, 5-100)")
    p.add_argument("--threads", type=positive_int,
                   help="threads for every pool (default: all cores)")
    p.add_argument("--top", type=positive_int, default=10, help="operations to list")
    p.add_argument("--timeout", type=positive_seconds, metavar="S",
                   help="give up after S seconds")
    p.add_argument("--ncu", action=argparse.BooleanOptionalAction, default=None,
                   help="Nsight Compute on CUDA cases (default: when ncu is installed)")

    p = sub.add_parser("calibrate", help="measure this machine's ceilings")
    p.add_argument("--threads", type=positive_int)
    p.add_argument("--force", action="store_true", help="measure even if cached")

    from . import gate_cli  # gate, ab, baseline save, export

    gate_cli.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .lifetime import interrupt_on_sigterm

    interrupt_on_sigterm()
    _plain_warnings()
    try:
        args = build_parser().parse_args(argv)
        return dispatch(args)
    except UsageError as exc:
        print(f"kernbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _plain_warnings() -> None:
    """kernbench's own warnings as one `kernbench: warning: ...` line on stderr, like its
    errors; other libraries' warnings keep Python's format (their source line helps)."""
    import warnings

    from .errors import KernbenchWarning

    show = warnings.showwarning
    if getattr(show, "kernbench", False):  # main() called again in one process (tests)
        return

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, KernbenchWarning):
            print(f"kernbench: warning: {message}", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    showwarning.kernbench = True
    warnings.showwarning = showwarning


def dispatch(args: argparse.Namespace) -> int:
    from . import gate_cli

    if args.command in gate_cli.COMMANDS:
        return gate_cli.dispatch(args)
    if args.command == "list":
        from .listing import listing

        print(listing(args.kernels))
    elif args.command == "run":
        from .run import RunOptions, execute_run

        execute_run(RunOptions(
            suite=args.suite, output=args.output, kernels_dirs=tuple(args.kernels),
            kernel=tuple(args.kernel), backend=tuple(args.backend), dtype=tuple(args.dtype),
            device=tuple(args.device), mode=tuple(args.mode), case=tuple(args.case),
            threads=args.threads, isolate=args.isolate,
            calibrate=args.calibrate, progress=not args.no_progress,
            allocator=args.allocator, resume=args.resume, shard=args.shard,
            dry_run=args.dry_run, profile=args.profile,
            memory_limit=args.memory_limit))
    elif args.command == "show":
        from .show import table

        print(table(args.results, markdown=args.markdown, reference=args.reference))
    elif args.command == "report":
        from pathlib import Path

        from .report import write_report

        output = args.output or f"reports/{Path(args.results[-1]).stem}.html"
        path = write_report(args.results, output, reference=args.reference,
                            figures=not args.no_plots, allow_foreign=args.allow_foreign)
        print(f"report: {path}")
    elif args.command == "merge":
        from .merge import merge

        print(merge(args.results, args.output))
    elif args.command == "profile":
        from .profile import ProfileOptions, execute_profile

        return execute_profile(ProfileOptions(
            case_id=args.case_id, kernel=args.kernel, backend=args.backend, dtype=args.dtype,
            device=args.device, params=args.params, kernels_dirs=tuple(args.kernels),
            root=args.out, calls=args.calls, threads=args.threads, top=args.top,
            timeout_s=args.timeout, ncu=args.ncu))
    elif args.command == "calibrate":
        import os

        from . import ceilings, environment
        from .runner import RunSettings

        threads = args.threads or os.cpu_count() or 1
        fp = environment.fingerprint(environment.machine(), environment.software())
        with RunSettings(threads) as settings:
            data = ceilings.load_or_measure(fp, threads, settings.worker_env({}),
                                            force=args.force)
        print(json.dumps(data, indent=1))
    else:  # pragma: no cover - argparse rejects unknown commands
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
