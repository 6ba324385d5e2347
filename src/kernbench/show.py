"""`kernbench show`: the report's summary in the terminal (or as markdown with `--markdown`).

A thin command over `kernbench.report`: the same model as the HTML page, so the terminal and the
browser always agree. Per algorithm, shape and dtype, each backend's median time (± IQR/median),
speedup over the reference backend, GB/s or GFLOP/s with the fraction of this machine's roofline,
and marks for interpreted, suspect and inaccurate results, which are shown but never ranked;
then every case that did not run ok, with its reason."""

from __future__ import annotations

from pathlib import Path

from .report.model import build
from .report.text import render
from .report.units import fmt_time
from .results import read_run

__all__ = ["fmt_time", "table"]


def table(path: str | Path, markdown: bool = False, reference: str | None = None) -> str:
    """The summary of a results file as text, or as markdown."""
    return render(build(read_run(path), reference), markdown=markdown)
