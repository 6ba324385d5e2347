"""The report's summary as plain text (terminal) or markdown: what `kernbench show` prints.

Same model, same rules and same figures as the HTML page (see `model`); only the layout
differs. Text from a results file is made harmless for where it goes: control characters are
dropped for the terminal (a reason cannot move the cursor or recolour the screen), and for
markdown `|`, `<`, `>`, `&` and backticks are escaped so a reason cannot break a table or inject
markup into a pull-request comment.
"""

from __future__ import annotations

import re

from .model import (
    ReportModel,
    SpeedCell,
    Table,
    ceiling_text,
    contended_line,
    roof_rose_line,
)
from .units import MISSING, fmt_percent, fmt_rate, fmt_ratio, fmt_time

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def clean(text: object) -> str:
    """One line of text with no control characters."""
    return _CONTROL.sub(" ", "" if text is None else str(text)).strip()


def md(text: object) -> str:
    """Text safe inside a markdown table cell."""
    out = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace("|", "\\|").replace("`", "\\`")


def speed_text(c: SpeedCell) -> str:
    """`14.8 µs ±1% 1.00× 4.44 GB/s (10%)`, with marks: `★` fastest, INTERPRETED, SUSPECT,
    INACCURATE; the status where there is no time."""
    if c.median_s is None:
        return c.status
    parts = [fmt_time(c.median_s)]
    if c.spread is not None:
        parts[0] += f" ±{fmt_percent(c.spread)}"
    if c.speedup is not None:
        parts.append(fmt_ratio(c.speedup) + ("†" if c.speedup_over else ""))
    if c.rate is not None and "interpreted" not in c.unranked:
        rate = fmt_rate(c.rate, c.rate_unit)
        if c.fraction is not None:
            rate += f" ({fmt_percent(c.fraction)})"
        parts.append(rate)
    parts += [flag.upper() for flag in c.unranked]
    if c.contended is not None:
        parts.append("CONTENDED")
    if c.roof_rose is not None:
        parts.append("ROOF-ROSE")
    text = " ".join(parts)
    return f"★{text}" if c.fastest else text


def _rows_of(table: Table) -> tuple[list[str], list[list[str]]]:
    head = ["shape", "dtype"]
    if table.show_mode:
        head.append("mode")
    if table.show_device:
        head.append("device")
    head += table.labels
    rows = []
    for row in table.rows:
        k = row.key
        cells = [table.shape(k.params), k.dtype]
        if table.show_mode:
            cells.append(k.mode)
        if table.show_device:
            cells.append(k.device)
        cells += [speed_text(row.cells[lab]) if lab in row.cells else "" for lab in table.labels]
        rows.append(cells)
    return head, rows


def summary_rows(model: ReportModel) -> tuple[list[str], list[list[str]]]:
    head = ["algorithm", "dtype", "best", *model.labels]
    rows = []
    for r in model.summary:
        dtype = r.dtype + ("†" if r.over else "")
        if len({s.device for s in model.summary}) > 1 or r.mode != "forward":
            dtype += f" {r.mode} {r.device}"
        best = f"{r.best} ({r.best_wins}/{r.shapes})" if r.best else "none ranked"
        cells = [r.kernel, dtype, best]
        for lab in model.labels:
            cell = r.cells.get(lab)
            if cell is None:
                cells.append("")
            elif cell.geomean is None:
                cells.append(cell.note or MISSING)
            else:
                text = fmt_ratio(cell.geomean)
                if cell.n < cell.total:
                    text += f" ({cell.n}/{cell.total})"
                cells.append(("★" if cell.best else "") + text)
        rows.append(cells)
    return head, rows


def render(model: ReportModel, markdown: bool = False) -> str:
    """The summary, then one speed table per algorithm, then what did not run and why."""
    h = model.header
    esc = md if markdown else clean
    git = h.get("git") if isinstance(h.get("git"), dict) else {}
    machine = h.get("machine") if isinstance(h.get("machine"), dict) else {}
    settings = h.get("settings") if isinstance(h.get("settings"), dict) else {}
    commit = str(git.get("commit") or "no commit")[:10] + (" (dirty)" if git.get("dirty") else "")
    lines = []
    title = (f"kernbench: suite {h.get('suite')} · {h.get('started')} · {commit} · "
             f"{machine.get('cpu')}, {machine.get('cores')} cores · threads "
             f"{settings.get('threads')}")
    lines.append(f"## {esc(title)}" if markdown else esc(title))
    ceilings = ceiling_text(h)
    for device, text in ceilings:
        lines.append(esc(f"ceilings {device}: {text}"))
    if not ceilings:
        lines.append("no ceilings (calibration skipped): no % of roofline, no suspect check")
    counts = ", ".join(f"{n} {s}" for s, n in sorted(model.counts.items()))
    lines.append(esc(f"{sum(model.counts.values())} cases: {counts}"))
    if model.contended:
        lines.append(esc(contended_line(model.contended)))
    if model.roof_rose:
        lines.append(esc(roof_rose_line(model.roof_rose)))
    if markdown:
        lines = [line + "  " for line in lines]

    dagger = (f"; † over {model.reference} float32, which lacks the dtype"
              if any(r.over for r in model.summary) else "")
    lines += ["", f"{'### ' if markdown else ''}" + esc(
        f"Summary: geometric-mean speedup over {model.reference} (★ best backend: lowest "
        f"geometric-mean time among those ranked on every shape{dagger}; interpreted, suspect "
        f"and inaccurate times are never ranked)"), ""]
    if not model.has_reference:
        lines[-1:-1] = [esc(f"{model.reference} is not in this run: no speedups (choose "
                            f"another with --reference)")]
    head, rows = summary_rows(model)
    lines += _render(head, rows, markdown)
    lines += ["", "Cells below: median ±IQR/median, speedup over " + esc(model.reference)
              + ", throughput (% of the roofline bound); ★ fastest ranked in its row."]
    for s in model.kernels:
        lines += ["", f"### {esc(s.kernel)}" if markdown else f"== {esc(s.kernel)}", ""]
        if s.fixed:
            lines += [esc(f"every case: {s.fixed}"), ""]
        head, rows = _rows_of(s.speed)
        lines += _render(head, rows, markdown)
        problems = [p for p in s.problems]
        if problems:
            lines.append("")
            lines.append("Not ok:" if not markdown else "Not ok:  ")
            for p in problems:
                where = f"{p.label} {p.dtype} {p.device}" + (
                    f" {p.mode}" if p.mode != "forward" else "")
                shapes = "; ".join(s.speed.shape(x) for x in p.params)
                reason = p.reason if markdown else _truncate(p.reason, 200)
                bullet = "- " if markdown else "  "
                lines.append(f"{bullet}{esc(p.status)}: {esc(where)} [{esc(shapes)}]: "
                             f"{esc(reason)}")
    return "\n".join(lines)


def _truncate(text: str, n: int) -> str:
    text = clean(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _render(header: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        out = ["| " + " | ".join(md(h) for h in header) + " |",
               "|" + "---|" * len(header)]
        out += ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]
        return out
    header = [clean(h) for h in header]
    rows = [[clean(c) for c in r] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths)),
            *(fmt.format(*r).rstrip() for r in rows)]
