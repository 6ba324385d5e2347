"""Reports from results files: the HTML page (`kernbench report`), and the summary that
`kernbench show` prints in the terminal or as markdown.

Reporting only reads result files (as JSON, through `kernbench.results`): it never imports a
framework and never times anything. `model` turns a run into tables once; `html`, `plots` and
`text` only present them, so every output agrees. Compare mode (two or more files) takes its
verdicts from `kernbench.compare`, the same code the gate uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError
from ..paths import writable_file, write_output
from ..results import read_run
from .model import DEFAULT_REFERENCE, ReportModel, build

__all__ = ["DEFAULT_REFERENCE", "ReportModel", "build", "render_report", "write_report"]


def render_report(paths: Sequence[str | Path], reference: str | None = None,
                  figures: bool = True, allow_foreign: bool = False) -> str:
    """The HTML page for one results file, or for two or more in compare mode (each later file
    compared with the first by the gate's rules; the details shown are those of the last).
    `allow_foreign`: give timing verdicts even between different machines or settings."""
    from . import html

    if not paths:
        raise UsageError("report: no results file given")
    runs = [read_run(p) for p in paths]
    model = build(runs[-1], reference)
    compare_html = ""
    if len(runs) > 1:
        from ..compare import GatePolicy
        from .comparison import build_comparison

        policy = GatePolicy(allow_foreign=allow_foreign)
        compare_html = html.compare_block(build_comparison(runs, policy))
    return html.render(model, compare_html, figures=figures)


def write_report(paths: Sequence[str | Path], output: str | Path,
                 reference: str | None = None, figures: bool = True,
                 allow_foreign: bool = False) -> Path:
    """Render and write the page; returns its path. The output is checked first (writable, not
    one of the results files it reads)."""
    out = writable_file(output, "-o", inputs=paths)
    text = render_report(paths, reference, figures, allow_foreign)
    write_output(out, text)
    return out
