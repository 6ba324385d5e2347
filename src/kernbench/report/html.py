"""The HTML report: one self-contained page, opened straight from disk.

Everything it shows comes from `model` (and `comparison` in compare mode); this module only lays
it out. Every string that came from a results file (kernel and backend names, parameters, error
messages, tracebacks) goes through `e()` (html.escape, quotes included) before it reaches the
page, so a reason containing markup reads as text. Nothing is fetched: styles are inline, plots
are inline SVG, and a Content-Security-Policy forbids any network load and lets only this
module's own script (pinned by its hash) run, so even a missed escape could not execute.

The script is small and optional: click a column heading to sort, pick an algorithm, backend or
dtype to filter. With scripting off every table is shown in full and the filter bar is hidden.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from collections.abc import Iterable
from datetime import datetime, timezone

from .. import __version__
from . import plots
from .model import (
    CONTENDED_TEXT,
    ROOF_ROSE_TEXT,
    UNRANKED_FLAGS,
    AccuracyRow,
    KernelSection,
    MemoryCell,
    ReportModel,
    Row,
    SpeedCell,
    Table,
    ceiling_text,
    contended_line,
    dtype_key,
    eps_of,
    roof_rose_line,
)
from .units import (
    MISSING,
    fmt_bytes,
    fmt_count,
    fmt_percent,
    fmt_rate,
    fmt_ratio,
    fmt_sci,
    fmt_time,
    num,
)


def e(value: object) -> str:
    """Escape anything for HTML text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def wb(value: object, underscore: bool = False) -> str:
    """Escaped text that may break after `:` and `,` (and `_`: column headings), so long
    backend variants and shapes wrap instead of widening the table."""
    text = e(value).replace(":", ":<wbr>").replace(",", ",<wbr>")
    return text.replace("_", "_<wbr>") if underscore else text


def slug(text: str, index: int) -> str:
    """A safe, unique element id for a kernel (names are data: never trusted in an id)."""
    return f"k{index}-" + (re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:40] or "x")


CSS = """
:root{--fg:#1d2126;--dim:#5f6b7a;--line:#dde2e8;--bg:#fff;--soft:#f5f7fa;--ok:#1a7f37;
--bad:#c62828;--warn:#9a6700;--acc:#0b5cad;--best:#e6f4ea}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--fg);background:var(--bg)}
main{max-width:1380px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:24px;margin:0 0 2px}h2{font-size:20px;margin:36px 0 6px;padding-top:10px;
border-top:2px solid var(--line)}h3{font-size:15px;margin:22px 0 6px}
a{color:var(--acc)}.dim{color:var(--dim)}.small{font-size:12px}
.sub{color:var(--dim);margin:0 0 14px}
.meta{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:10px 18px;
background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:12px 16px}
.meta h4{margin:0 0 4px;font-size:12px;text-transform:uppercase;letter-spacing:.04em;
color:var(--dim)}
.meta dl{margin:0;display:grid;grid-template-columns:max-content 1fr;gap:1px 10px;font-size:12.5px}
.meta dt{color:var(--dim)}.meta dd{margin:0;overflow-wrap:anywhere}
.chips{margin:12px 0;display:flex;flex-wrap:wrap;gap:6px}
.chip{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;
border:1px solid var(--line);background:var(--soft);white-space:nowrap}
.chip.ok{background:#e6f4ea;border-color:#b7dfc2}.chip.failed,.chip.crashed,.chip.timeout,
.chip.regression{background:#fdecea;border-color:#f3b7b2;color:#8a1c14}
.chip.unsupported,.chip.skipped,.chip.missing,.chip.new{background:#f1f3f5}
.chip.inconclusive{background:#fff4d6;border-color:#ecd38f}
.chip.improvement{background:#e3f0fc;border-color:#a9cbee}
.legend{font-size:12.5px;color:var(--dim);margin:8px 0 4px}
.legend span{margin-right:14px;white-space:nowrap}
.filters{position:sticky;top:0;z-index:5;background:rgba(255,255,255,.96);padding:8px 0;
border-bottom:1px solid var(--line);display:flex;gap:14px;align-items:center;flex-wrap:wrap}
html:not(.js) .filters{display:none}
.filters label{font-size:13px}.filters select{font:inherit;padding:2px 4px}
nav.toc{margin:10px 0;font-size:13px}nav.toc a{margin-right:12px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:12.5px;font-variant-numeric:tabular-nums;margin:4px 0}
th,td{border:1px solid var(--line);padding:4px 6px;vertical-align:top;text-align:left}
thead th{background:var(--soft);position:relative}
th.sortable{cursor:pointer}th.nw{white-space:nowrap}
html.js th.sortable:after{content:" \\2195";color:#aab}
th[aria-sort=ascending]:after{content:" \\2191"!important;color:var(--fg)!important}
th[aria-sort=descending]:after{content:" \\2193"!important;color:var(--fg)!important}
td.rh{font-weight:600;min-width:80px}td.rh .dim{font-weight:400}
tr.first td{border-top:2px solid #b9c2cc}
td.num{text-align:right}
.c .t{white-space:nowrap}.c .s{color:var(--dim);font-size:11.5px}
.c .s span{white-space:nowrap}
.c.fastest{background:var(--best);box-shadow:inset 3px 0 0 var(--ok)}
.star{color:var(--ok);font-weight:700}
.c.interp{color:#8a8f98;background:repeating-linear-gradient(135deg,#fafafa 0 6px,#f2f2f2 6px 12px)}
.c.suspect{background:#fff4d6}.c.inaccurate{background:#fdecea}
.c.nodata{color:var(--dim);font-style:italic}
.c.nodata.failed,.c.nodata.crashed,.c.nodata.timeout{color:var(--bad);font-style:normal;
font-weight:600}
.badge{display:inline-block;font-size:10.5px;font-weight:700;letter-spacing:.03em;
border-radius:3px;padding:0 4px;margin:1px 2px 0 0;font-style:normal}
.badge.interpreted{background:#e9ecef;color:#555}.badge.suspect{background:#f5c542;color:#4a3500}
.badge.inaccurate,.badge.fail{background:var(--bad);color:#fff}.badge.pass{background:#d5efdc;
color:#14532d}.badge.warn{background:#f5c542;color:#4a3500}
.badge.contended{background:#fde2c8;color:#7a3b00}.badge.roofrose{background:#dde8f7;color:#1d3d6b}
p.warn{background:#fff4d6;padding:4px 8px}
.roof{display:flex;align-items:center;gap:5px;font-size:11px;color:var(--dim)}
.bar{flex:1;height:4px;background:#e4e8ee;border-radius:2px;overflow:hidden;min-width:50px}
.bar i{display:block;height:4px;background:#6f9fd6}
.summary td,.summary th{padding:4px 5px}.summary td.bestcol{min-width:150px}
.summary td.c{text-align:right;white-space:nowrap}.summary td.best{font-weight:700;
box-shadow:inset 0 0 0 2px var(--ok)}
.summary td.note{color:#8a8f98;font-style:italic;text-align:center}
figure{margin:10px 0 18px}figure svg.plot{width:100%;height:auto;display:block}
figcaption{font-size:12px;color:var(--dim);max-width:1100px}
.problems td.reason{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;
white-space:pre-wrap;overflow-wrap:anywhere;max-width:760px}
details pre{white-space:pre-wrap;font-size:11px;background:var(--soft);padding:6px;
max-height:300px;overflow:auto}
.st{font-weight:700}.st.failed,.st.crashed,.st.timeout,.st.regression{color:var(--bad)}
.st.unsupported,.st.skipped,.st.new,.st.missing,.st.same{color:var(--dim)}
.st.inconclusive{color:var(--warn)}.st.improvement{color:var(--acc)}
.callout{background:var(--soft);border-left:3px solid #b9c2cc;padding:6px 10px;font-size:12.5px;
margin:6px 0;max-width:1100px}
.hide-kernel,.hide-backend,.hide-dtype{display:none!important}
footer{margin-top:40px;color:var(--dim);font-size:12px}
@media print{.filters{display:none}}
"""

SCRIPT = """
(function(){
var d=document;d.documentElement.className+=' js';
function key(row,i){var c=row.cells[i];if(!c)return null;var v=c.getAttribute('data-sort');
if(v===null)v=c.textContent.trim();if(v==='')return null;var f=Number(v);return isNaN(f)?v:f;}
d.querySelectorAll('th.sortable').forEach(function(th){th.addEventListener('click',function(){
var tb=th.closest('table').tBodies[0],i=th.cellIndex,rows=Array.prototype.slice.call(tb.rows);
var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
th.parentNode.querySelectorAll('th').forEach(function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',dir>0?'ascending':'descending');
rows.sort(function(a,b){var x=key(a,i),y=key(b,i);if(x===null)return y===null?0:1;
if(y===null)return -1;if(typeof x==='number'&&typeof y==='number')return dir*(x-y);
return dir*String(x).localeCompare(String(y));});
rows.forEach(function(r){r.classList.remove('first');tb.appendChild(r);});});});
function apply(){['kernel','backend','dtype'].forEach(function(k){
var v=d.getElementById('f-'+k).value;d.querySelectorAll('[data-'+k+']').forEach(function(el){
el.classList.toggle('hide-'+k,v!==''&&el.getAttribute('data-'+k)!==v);});});}
['kernel','backend','dtype'].forEach(function(k){
d.getElementById('f-'+k).addEventListener('change',apply);});
})();
"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{e(_csp())}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"color-scheme\" content=\"light\">\n"
        f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n")


# -- the run -----------------------------------------------------------------------------------
def _dl(pairs: Iterable[tuple[str, object]]) -> str:
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in pairs
                    if v not in (None, "", [], {}))
    return f"<dl>{items}</dl>" if items else "<dl><dt>—</dt><dd>not recorded</dd></dl>"


def _d(header: dict, key: str) -> dict:
    value = header.get(key)
    return value if isinstance(value, dict) else {}


def run_title(header: dict) -> str:
    git = _d(header, "git")
    commit = str(git.get("commit") or "")[:10] or "no commit"
    dirty = " (dirty)" if git.get("dirty") else ""
    return (f"suite {header.get('suite') or '?'} · {header.get('started') or '?'} · "
            f"{commit}{dirty}")


def run_block(header: dict, path: str) -> str:
    """Machine, software, settings, ceilings, suite, commit, when."""
    machine, git, settings = _d(header, "machine"), _d(header, "git"), _d(header, "settings")
    mem = num(machine.get("memory_bytes"))
    gpus = machine.get("gpus")
    gpu_text = ", ".join(str(g.get("name", g)) if isinstance(g, dict) else str(g)
                         for g in gpus) if isinstance(gpus, list) and gpus else "none"
    flags = machine.get("cpu_flags")
    env = _d(settings, "env")
    blocks = [
        ("Run", [("suite", header.get("suite")), ("description", header.get("description")),
                 ("suite file", header.get("suite_path")), ("started", header.get("started")),
                 ("run id", header.get("run_id")), ("results file", path),
                 ("cases", header.get("n_cases"))]),
        ("Commit", [("commit", git.get("commit") or "not in a git checkout"),
                    ("branch", git.get("branch")),
                    ("working tree", "dirty (uncommitted changes)" if git.get("dirty")
                     else "clean" if "dirty" in git else None)]),
        ("Machine", [("CPU", machine.get("cpu")), ("cores", machine.get("cores")),
                     ("memory", fmt_bytes(mem) if mem else None), ("arch", machine.get("arch")),
                     ("GPUs", gpu_text), ("OS", machine.get("os")),
                     ("governor", machine.get("governor")), ("host", machine.get("hostname")),
                     ("SIMD", " ".join(map(str, flags)) if isinstance(flags, list) else None),
                     ("fingerprint", header.get("fingerprint"))]),
        ("Software", [(k, v) for k, v in _d(header, "software").items() if v]),
        ("Settings", [("threads", settings.get("threads")), ("isolation", settings.get("isolate")),
                      ("allocator", settings.get("allocator")),
                      *((k, v) for k, v in env.items())]),
        ("Ceilings (measured)", ceiling_text(header) or [("—", "none: calibration skipped; "
                                                         "no % of ceiling, no suspect check")]),
    ]
    return "<section class=\"meta\">" + "".join(
        f"<div><h4>{e(name)}</h4>{_dl(pairs)}</div>" for name, pairs in blocks) + "</section>"


def count_chips(counts: dict[str, int], anchor: str = "") -> str:
    total = sum(counts.values())
    order = ["ok", "failed", "crashed", "timeout", "skipped", "unsupported"]
    chips = [f"<span class=\"chip\"><b>{total}</b> cases</span>"]
    for status in sorted(counts, key=lambda s: order.index(s) if s in order else 99):
        chips.append(f"<span class=\"chip {e(status)}\">{counts[status]} {e(status)}</span>")
    link = f" <a class=\"small\" href=\"#{e(anchor)}\">problems</a>" if anchor and any(
        s != "ok" for s in counts) else ""
    return "<div class=\"chips\">" + "".join(chips) + link + "</div>"


LEGEND = (
    "<div class=\"legend\"><span><span class=\"star\">★</span> fastest ranked result in its row"
    "</span><span><span class=\"badge interpreted\">INTERPRETED</span> Triton's CPU "
    "interpreter or numba's CUDA simulator: correctness only, never ranked</span><span>"
    "<span class=\"badge suspect\">SUSPECT</span> above this machine's ceiling: not ranked"
    "</span><span><span class=\"badge inaccurate\">INACCURATE</span> fails its tolerance: not "
    "ranked</span><span>±: IQR / median of the kept samples</span><span>blue bar: fraction of "
    "the roofline bound</span></div>")


def filter_bar(kernels: list[str], labels: list[str], dtypes: list[str]) -> str:
    def select(name: str, title: str, values: list[str]) -> str:
        opts = "".join(f"<option value=\"{e(v)}\">{e(v)}</option>" for v in values)
        return (f"<label>{e(title)} <select id=\"f-{name}\"><option value=\"\">all</option>"
                f"{opts}</select></label>")

    return ("<div class=\"filters\">" + select("kernel", "algorithm", kernels)
            + select("backend", "backend", labels) + select("dtype", "dtype", dtypes)
            + "<span class=\"small dim\">click a column heading to sort</span></div>")


# -- the summary -------------------------------------------------------------------------------
def _speed_colour(x: float | None) -> str:
    """A background that reads at a glance: green faster than the reference, red slower."""
    if x is None or not math.isfinite(x) or x <= 0:
        return ""
    strength = min(abs(math.log10(x)), 1.0)
    if strength < 0.02:
        return ""
    hue = 140 if x > 1 else 5
    return f" style=\"background:hsla({hue},60%,45%,{0.06 + 0.24 * strength:.2f})\""


def summary_block(model: ReportModel, ids: dict[str, str]) -> str:
    ref = model.reference
    multi_device = len({r.device for r in model.summary}) > 1
    multi_mode = len({r.mode for r in model.summary}) > 1
    head = ["<th class=\"sortable\">algorithm</th>", "<th class=\"sortable\">dtype</th>"]
    if multi_mode:
        head.append("<th class=\"sortable\">mode</th>")
    if multi_device:
        head.append("<th class=\"sortable\">device</th>")
    head.append("<th class=\"sortable\">best backend</th>")
    head += [f"<th class=\"sortable\" data-backend=\"{e(lab)}\">{wb(lab, True)}</th>"
             for lab in model.labels]
    rows = []
    fallback = False
    for r in model.summary:
        over = ""
        if r.over:
            fallback = True
            over = f" <span class=\"dim\" title=\"speedups over {e(ref)} {e(r.over)}\">†</span>"
        kid = ids.get(r.kernel, "")
        cells = [f"<td class=\"rh\"><a href=\"#{e(kid)}\">{e(r.kernel)}</a></td>",
                 f"<td data-sort=\"{dtype_key(r.dtype)[0]}\">{e(r.dtype)}{over}</td>"]
        if multi_mode:
            cells.append(f"<td>{e(r.mode)}</td>")
        if multi_device:
            cells.append(f"<td>{e(r.device)}</td>")
        if r.best:
            cells.append(f"<td class=\"bestcol\"><b>{wb(r.best)}</b><br><span class=\"dim small\">"
                         f"fastest on {r.best_wins}/{r.shapes} shape"
                         f"{'s' if r.shapes != 1 else ''}</span></td>")
        else:
            cells.append("<td class=\"dim\"><i>none ranked</i></td>")
        for lab in model.labels:
            cell = r.cells.get(lab)
            attr = f" data-backend=\"{e(lab)}\""
            if cell is None:
                cells.append(f"<td class=\"c note\"{attr}></td>")
            elif cell.geomean is None:
                cells.append(f"<td class=\"c note\"{attr} title=\"no ranked time: "
                             f"{e(cell.note)}\">{e(cell.note or MISSING)}</td>")
            else:
                part = (f" <span class=\"dim small\" title=\"geometric mean over {cell.n} of "
                        f"{cell.total} shapes\">{cell.n}/{cell.total}</span>"
                        if cell.n < cell.total else "")
                star = " <span class=\"star\">★</span>" if cell.best else ""
                cls = "c best" if cell.best else "c"
                cells.append(f"<td class=\"{cls}\"{attr} data-sort=\"{cell.geomean:.6g}\""
                             f"{_speed_colour(cell.geomean)}>{e(fmt_ratio(cell.geomean))}"
                             f"{part}{star}</td>")
        rows.append(f"<tr data-kernel=\"{e(r.kernel)}\" data-dtype=\"{e(r.dtype)}\">"
                    + "".join(cells) + "</tr>")
    note = (f"<p class=\"small dim\">Cells: geometric-mean speedup over <b>{e(ref)}</b> across "
            f"the shapes of the sweep (higher is faster; n/N when a backend has a ranked time on"
            f" fewer shapes). ★ and <i>best backend</i>: lowest geometric-mean time among the "
            f"backends with a ranked time on every shape. Interpreted, suspect and inaccurate "
            f"times are never ranked.")
    if fallback:
        note += (f" † {e(ref)} cannot run this dtype: speedups are over its "
                 f"float32 time for the same shape.")
    if not model.has_reference:
        note += (f" <b>{e(ref)} is not in this run: no speedups</b> (choose another with "
                 f"--reference).")
    note += "</p>"
    if not model.summary:
        return "<h2 id=\"summary\">Summary</h2><p class=\"dim\">No cases in this run.</p>"
    return ("<h2 id=\"summary\">Summary</h2>" + note
            + "<div class=\"scroll\"><table class=\"summary\"><thead><tr>" + "".join(head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


# -- per algorithm -----------------------------------------------------------------------------
def _head(table: Table, kernel: str, extra: str = "") -> str:
    cols = ["<th class=\"sortable nw\">shape</th>", "<th class=\"sortable nw\">dtype</th>"]
    if table.show_mode:
        cols.append("<th class=\"sortable\">mode</th>")
    if table.show_device:
        cols.append("<th class=\"sortable\">device</th>")
    for lab in table.labels:
        cols.append(f"<th class=\"sortable\" data-backend=\"{e(lab)}\">{wb(lab, True)}{extra}</th>")
    return "<thead><tr>" + "".join(cols) + "</tr></thead>"


def _row_open(row: Row, kernel: str, first: bool, table: Table) -> str:
    k = row.key
    cls = " class=\"first\"" if first else ""
    cells = [f"<td class=\"rh\" data-sort=\"{k.shape_rank}\" title=\"{e(k.params)}\">"
             f"{wb(table.shape(k.params))}</td>",
             f"<td data-sort=\"{k.dtype_rank[0]}\">{e(k.dtype)}</td>"]
    if table.show_mode:
        cells.append(f"<td>{e(k.mode)}</td>")
    if table.show_device:
        cells.append(f"<td>{e(k.device)}</td>")
    return (f"<tr{cls} data-kernel=\"{e(kernel)}\" data-dtype=\"{e(k.dtype)}\">"
            + "".join(cells))


def _table(table: Table, kernel: str, cell, head_extra=None) -> str:
    rows = []
    previous = None
    for row in table.rows:
        group = (row.key.device, row.key.mode, row.key.dtype)
        html_row = _row_open(row, kernel, previous is not None and group != previous, table)
        previous = group
        for lab in table.labels:
            c = row.cells.get(lab)
            html_row += cell(c, lab) if c is not None else (
                f"<td class=\"c nodata\" data-backend=\"{e(lab)}\" title=\"not in this run\">"
                f"</td>")
        rows.append(html_row + "</tr>")
    head = _head(table, kernel) if head_extra is None else head_extra
    return (f"<div class=\"scroll\"><table class=\"grid\">{head}<tbody>" + "".join(rows)
            + "</tbody></table></div>")


def _nodata(status: str, reason: str | None, lab: str, problem_anchor: str) -> str:
    title = f" title=\"{e(reason)}\"" if reason else ""
    return (f"<td class=\"c nodata {e(status)}\" data-backend=\"{e(lab)}\"{title}>"
            f"<a href=\"#{e(problem_anchor)}\">{e(status)}</a></td>")


def speed_cell(c: SpeedCell, lab: str, problems: str) -> str:
    if c.median_s is None:
        return _nodata(c.status, c.reason, lab, problems)
    classes = ["c"]
    badges = []
    for flag in c.unranked:
        classes.append("interp" if flag == "interpreted" else flag)
        badges.append(f"<span class=\"badge {e(flag)}\" title=\"{e(UNRANKED_FLAGS.get(flag, ''))}"
                      f"\">{e(flag.upper())}</span>")
    if c.contended is not None:
        badges.append(f"<span class=\"badge contended\" title=\""
                      f"{e(CONTENDED_TEXT.format(figures=c.contended))}\">CONTENDED"
                      f"</span>")
    if c.roof_rose is not None:
        badges.append(f"<span class=\"badge roofrose\" title=\""
                      f"{e(ROOF_ROSE_TEXT.format(figures=c.roof_rose))}\">ROOF ROSE"
                      f"</span>")
    if c.fastest:
        classes.append("fastest")
    spread = f" <span class=\"dim\">±{fmt_percent(c.spread)}</span>" if c.spread is not None else ""
    star = " <span class=\"star\" title=\"fastest ranked result in this row\">★</span>" if (
        c.fastest) else ""
    second = []
    interpreted = "interpreted" in c.unranked
    if c.speedup is not None:
        second.append(f"<span>{e(fmt_ratio(c.speedup))}{'†' if c.speedup_over else ''}</span>")
    if c.rate is not None and not interpreted:
        second.append(f"<span>{e(fmt_rate(c.rate, c.rate_unit))}</span>")
    bar = ""
    if c.fraction is not None and math.isfinite(c.fraction) and not interpreted:
        width = min(max(c.fraction, 0.0), 1.0) * 100
        bar = (f"<div class=\"roof\"><div class=\"bar\"><i style=\"width:{width:.1f}%\"></i>"
               f"</div>{e(fmt_percent(c.fraction))}</div>")
    title = [f"median {fmt_time(c.median_s)}", f"min {fmt_time(c.min_s)}"]
    if c.speedup is not None:
        over = f" (over its {c.speedup_over} time)" if c.speedup_over else ""
        title.append(f"{fmt_ratio(c.speedup)} the speed of the reference{over}")
    if c.spread is not None:
        title.append(f"IQR {fmt_percent(c.spread)} of the median")
    if c.n_samples:
        title.append(f"{c.n_samples} samples")
    if c.rate is not None and c.fraction is not None and not interpreted:
        title.append(f"{fmt_rate(c.rate, c.rate_unit)}, {fmt_percent(c.fraction)} of the "
                     f"{c.bound}-bound roofline")
    if c.reason:
        title.append(c.reason)
    return (f"<td class=\"{' '.join(classes)}\" data-backend=\"{e(lab)}\" "
            f"data-case=\"{e(c.case_id)}\" data-sort=\"{c.median_s:.6g}\" "
            f"title=\"{e('; '.join(title))}\">"
            f"<div class=\"t\"><b>{e(fmt_time(c.median_s))}</b>{spread}{star}</div>"
            f"<div class=\"s\">{' · '.join(second) or '&nbsp;'}</div>{bar}"
            + "".join(badges) + "</td>")


def memory_cell(c: MemoryCell, lab: str, problems: str, methods: dict[str, set]) -> str:
    if c.peak_bytes is None:
        if c.status == "ok":
            return (f"<td class=\"c nodata\" data-backend=\"{e(lab)}\">not measured"
                    f"{' (' + e(c.method) + ')' if c.method else ''}</td>")
        return _nodata(c.status, c.reason, lab, problems)
    lines = [f"<div class=\"t\"><b>{e(fmt_bytes(c.peak_bytes))}</b></div>"]
    if c.peak_bytes == 0 and c.method == "rss":
        lines.append("<div class=\"s\" title=\"the resident set did not grow: the call was served "
                     "from memory the process already held\">rss: no new pages</div>")
    elif c.overhead is not None:
        lines.append(f"<div class=\"s\" title=\"peak / output bytes ({e(fmt_bytes(c.output_bytes))}"
                     f"), the least a call must allocate\">{e(fmt_ratio(c.overhead))} of output"
                     f"</div>")
    if c.method and len(methods.get(lab, ())) > 1:
        lines.append(f"<div class=\"s\">{e(c.method)}</div>")
    return (f"<td class=\"c\" data-backend=\"{e(lab)}\" data-sort=\"{c.peak_bytes:.6g}\">"
            + "".join(lines) + "</td>")


def compile_cell(c, lab: str, problems: str) -> str:
    if c.first_s is None:
        return _nodata(c.status, c.reason, lab, problems)
    lines = [f"<div class=\"t\" title=\"the first call, where jit/compilation happens\">first call "
             f"<b>{e(fmt_time(c.first_s))}</b></div>"]
    if c.cold_s is not None or c.warm_s is not None:
        lines.append(f"<div class=\"s\">cold {e(fmt_time(c.cold_s))} · warm cache "
                     f"{e(fmt_time(c.warm_s))}</div>")
    counters = [(c.graphs, "graph"), (c.graph_breaks, "graph break"), (c.recompiles, "recompile")]
    if any(v is not None for v, _ in counters):
        parts = []
        for v, name in counters:
            if v is None:
                continue
            text = f"{fmt_count(v)} {name}{'s' if v != 1 else ''}"
            warn = name != "graph" and v > 0
            parts.append(f"<span class=\"badge warn\">{e(text)}</span>" if warn else e(text))
        lines.append("<div class=\"s\">" + " · ".join(parts) + "</div>")
    return (f"<td class=\"c\" data-backend=\"{e(lab)}\" data-sort=\"{c.first_s:.6g}\">"
            + "".join(lines) + "</td>")


def accuracy_table(section: KernelSection) -> str:
    dtypes = section.accuracy_dtypes
    if not section.accuracy:
        return "<p class=\"dim\">No accuracy figures: no case produced an output.</p>"
    head = ["<th class=\"sortable\">backend</th>"]
    for dt in dtypes:
        eps = eps_of(dt)
        eps_text = f" <span class=\"dim small\">eps {eps:.3g}</span>" if eps else ""
        head.append(f"<th class=\"sortable\" data-dtype=\"{e(dt)}\">{e(dt)}{eps_text}</th>")
    head.append("<th>error growth as precision drops</th>")
    rows = []
    for r in section.accuracy:
        cells = [f"<td class=\"rh\">{e(r.label)}</td>"]
        for dt in dtypes:
            cells.append(_accuracy_cell(r, dt))
        cells.append(f"<td class=\"small\">{_growth(r)}</td>")
        rows.append(f"<tr data-kernel=\"{e(section.kernel)}\" data-backend=\"{e(r.label)}\">"
                    + "".join(cells) + "</tr>")
    return ("<div class=\"scroll\"><table class=\"grid\"><thead><tr>" + "".join(head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def _accuracy_cell(r: AccuracyRow, dt: str) -> str:
    c = r.cells.get(dt)
    if c is None:
        return f"<td class=\"c nodata\" data-dtype=\"{e(dt)}\">no output</td>"
    ok = c.passed == c.n
    badge = (f"<span class=\"badge {'pass' if ok else 'fail'}\">{'PASS' if ok else 'FAIL'} "
             f"{c.passed}/{c.n}</span>")
    eps = f" <span class=\"dim\">= {e(fmt_sci(c.rel_l2_eps))} eps</span>" if (
        c.rel_l2_eps is not None) else ""
    tol = (f" · {e(fmt_percent(c.of_tolerance))} of tolerance" if c.of_tolerance is not None
           else "")
    nonfinite = (f"<div class=\"s\"><span class=\"badge fail\">{e(fmt_count(c.nonfinite))} "
                 f"non-finite</span></div>" if c.nonfinite else "")
    sort = "" if c.rel_l2_eps is None else f" data-sort=\"{c.rel_l2_eps:.6g}\""
    return (f"<td class=\"c{'' if ok else ' inaccurate'}\" data-dtype=\"{e(dt)}\"{sort}>"
            f"<div class=\"t\">rel L2 <b>{e(fmt_sci(c.rel_l2))}</b>{eps}</div>"
            f"<div class=\"s\">max {e(fmt_sci(c.max_ulp))} ULP{tol}</div>{nonfinite}{badge}</td>")


def _growth(r: AccuracyRow) -> str:
    parts = []
    for lo, hi, factor in r.growth:
        a, b = eps_of(lo), eps_of(hi)
        expect = f" <span class=\"dim\">(eps ×{fmt_sci(b / a)})</span>" if a and b else ""
        if factor is None:
            lo_cell = r.cells.get(lo)
            text = "exact in " + lo if lo_cell and lo_cell.rel_l2 == 0 else MISSING
            parts.append(f"{e(lo)}→{e(hi)}: {e(text)}")
        else:
            parts.append(f"{e(lo)}→{e(hi)}: <b>×{e(fmt_sci(factor))}</b>{expect}")
    return "<br>".join(parts) or MISSING


def problems_block(section: KernelSection, anchor: str) -> str:
    if not section.problems:
        return (f"<h3 id=\"{e(anchor)}\">Failures, skips and unsupported cases</h3>"
                "<p class=\"dim\">None: every case ran and passed.</p>")
    rows = []
    for i, p in enumerate(section.problems):
        shapes = "<br>".join(wb(section.speed.shape(s)) for s in p.params)
        tb = (f"<details><summary class=\"small\">traceback</summary><pre>{e(p.traceback)}</pre>"
              f"</details>") if p.traceback else ""
        flags = "".join(f" <span class=\"badge {e(f)}\">{e(f.upper())}</span>" for f in p.flags
                        if f in UNRANKED_FLAGS)
        rows.append(
            f"<tr id=\"{e(anchor)}-{i}\" data-kernel=\"{e(section.kernel)}\" "
            f"data-backend=\"{e(p.label)}\" data-dtype=\"{e(p.dtype)}\">"
            f"<td class=\"st {e(p.status)}\">{e(p.status)}{flags}</td><td>{e(p.label)}</td>"
            f"<td>{e(p.dtype)}</td><td>{e(p.device)}</td><td>{shapes}</td>"
            f"<td class=\"reason\">{e(p.reason)}{tb}</td></tr>")
    return (f"<h3 id=\"{e(anchor)}\">Failures, skips and unsupported cases</h3>"
            "<div class=\"scroll\"><table class=\"grid problems\"><thead><tr>"
            "<th class=\"sortable\">status</th><th class=\"sortable\">backend</th>"
            "<th class=\"sortable\">dtype</th><th>device</th><th>shapes</th><th>reason</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def _figure(svg: str | None, caption: str, missing: str) -> str:
    if svg is None:
        return f"<p class=\"callout\">{e(missing)}</p>"
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def kernel_block(section: KernelSection, model: ReportModel, anchor: str,
                 colours: dict, figures: bool) -> str:
    k = section.kernel
    problems = f"{anchor}-problems"
    methods: dict[str, set] = {}
    for row in section.memory.rows:
        for lab, c in row.cells.items():
            if c.method:
                methods.setdefault(lab, set()).add(c.method)
    mem_head_cols = ["<th class=\"sortable nw\">shape</th><th class=\"sortable nw\">dtype</th>"]
    if section.memory.show_mode:
        mem_head_cols.append("<th>mode</th>")
    if section.memory.show_device:
        mem_head_cols.append("<th>device</th>")
    for lab in section.memory.labels:
        how = ", ".join(sorted(methods.get(lab, ()))) or "—"
        mem_head_cols.append(f"<th class=\"sortable\" data-backend=\"{e(lab)}\">{wb(lab, True)}<br>"
                             f"<span class=\"dim small\">{e(how)}</span></th>")
    mem_head = "<thead><tr>" + "".join(mem_head_cols) + "</tr></thead>"

    out = [f"<section id=\"{e(anchor)}\" data-kernel=\"{e(k)}\">",
           f"<h2>{e(k)}</h2>", count_chips(section.counts, problems)]
    if section.fixed:
        out.append(f"<p class=\"small\">Every case: <code>{wb(section.fixed)}</code>; rows show "
                   f"the parameters that vary.</p>")
    out.append("<h3>Speed</h3><p class=\"small dim\">Median time per call ± IQR/median; then "
               f"speedup over <b>{e(model.reference)}</b> (same shape and dtype; † over its "
               "float32 time where it lacks the dtype), throughput (GFLOP/s where the roofline "
               "says compute-bound, GB/s where memory-bound) and its fraction of that bound. "
               "Hover a cell for min, sample count and reasons.</p>")
    out.append(_table(section.speed, k, lambda c, lab: speed_cell(c, lab, problems)))
    if figures:
        out.append(_figure(plots.time_plot(section, colours),
                           "Median time per call against problem size (log–log), one panel per "
                           "dtype; bars span the interquartile range of the samples; red rings "
                           "mark timed but unranked cases (inaccurate, suspect). Interpreted "
                           "Triton timings are left out.",
                           "No time-vs-size plot: no non-interpreted case has a time."))
        out.append(_figure(plots.roofline_plot(section, model.header, colours),
                           "Each case's achieved GFLOP/s at its arithmetic intensity (the spec's "
                           "FLOP count over its minimum traffic) under this machine's measured "
                           "roofs: the dashed copy-bandwidth slope and a flat GEMM roof per "
                           "dtype. Colour = backend, marker = dtype; red edge = unranked.",
                           "No roofline: no case with a FLOP count and a non-interpreted time."))
    out.append("<h3>Memory</h3><p class=\"small dim\">Peak bytes above the pre-call baseline "
               "for one call, and that peak over the call's output bytes (the least it must "
               "allocate). The method is named under each backend: tracemalloc sees NumPy and "
               "numba only; rss counts whole pages (small allocations served from an allocator "
               "cache show 0); figures from different methods are not interchangeable.</p>")
    out.append(_table(section.memory, k,
                      lambda c, lab: memory_cell(c, lab, problems, methods), mem_head))
    out.append("<h3>Accuracy drift</h3><p class=\"small dim\">Per backend and dtype, the worst "
               "case over the shapes: relative L2 error ‖out−ref‖/‖ref‖ against the float64 "
               "reference (and in units of the dtype's machine epsilon), max error in ULPs of "
               "the output dtype, the share of the tolerance used, and how many cases pass. The "
               "last column shows how the error grows as precision drops, beside the growth of "
               "eps itself.</p>")
    out.append(accuracy_table(section))
    if figures:
        out.append(_figure(plots.accuracy_heatmap(section),
                           "Relative L2 error over the dtype's machine epsilon, per case: one "
                           "scale for every format (about 1 = as good as rounding the exact "
                           "result). Red outline and ✗ = outside tolerance; n/a = no output.",
                           "No accuracy heat map: no case produced an output."))
    out.append("<h3>Compile time</h3><p class=\"small dim\">The first call, timed alone (jit "
               "tracing and compilation happen there). torch.compile: cold (empty inductor "
               "cache, isolated per run) and again from the warm cache, with graphs, graph breaks"
               " and recompiles.</p>")
    out.append(_table(section.compile, k, lambda c, lab: compile_cell(c, lab, problems)))
    out.append(problems_block(section, problems))
    out.append("</section>")
    return "\n".join(out)


def render(model: ReportModel, compare_html: str = "", figures: bool = True) -> str:
    """The whole page for one run (with an optional compare section before the details)."""
    ids = {s.kernel: slug(s.kernel, i) for i, s in enumerate(model.kernels)}
    colours = plots.palette(model.labels)
    no_plots = plots.available() if figures else None
    figures = figures and no_plots is None
    header = model.header
    kernels = [s.kernel for s in model.kernels]
    body = [f"<h1>kernbench report</h1><p class=\"sub\">{e(run_title(header))}</p>",
            run_block(header, model.path), count_chips(model.counts),
            (f"<p class=\"warn\">{e(contended_line(model.contended))}</p>"
             if model.contended else ""),
            (f"<p class=\"warn\">{e(roof_rose_line(model.roof_rose))}</p>"
             if model.roof_rose else ""), LEGEND,
            filter_bar(kernels, model.labels, model.dtypes)]
    if no_plots:
        body.append(f"<p class=\"callout\">{e(no_plots)}</p>")
    body.append("<nav class=\"toc\">Algorithms: " + "".join(
        f"<a href=\"#{e(ids[k])}\">{e(k)}</a>" for k in kernels)
        + ("<a href=\"#compare\">compare</a>" if compare_html else "") + "</nav>")
    body.append(summary_block(model, ids))
    if compare_html:
        body.append(compare_html)
    for s in model.kernels:
        body.append(kernel_block(s, model, ids[s.kernel], colours, figures))
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body.append(f"<footer>Generated by kernbench {e(__version__)} on {e(when)} from "
                f"{e(model.path)}. Self-contained: no network access, no external files."
                "</footer>")
    return page(f"kernbench — {header.get('suite') or 'report'}", "\n".join(body))


# -- compare mode ------------------------------------------------------------------------------
VERDICT_HELP = {
    "regression": "slower beyond the threshold: the whole confidence interval lies above it",
    "improvement": "faster beyond the threshold: the whole interval lies below it",
    "same": "the interval lies within the threshold band",
    "inconclusive": "the interval straddles the threshold: noise too large to decide (never "
                    "fails the gate)",
    "failed": "an exact gate failed: a new failure, accuracy loss, more recompiles or graph "
              "breaks, or more memory",
    "new": "not in the baseline",
    "missing": "in the baseline, not run (or not run ok) now",
}


def _verdict_chip(verdict: str) -> str:
    return (f"<span class=\"chip {e(verdict)}\" title=\"{e(VERDICT_HELP.get(verdict, ''))}\">"
            f"{e(verdict)}</span>")


def compare_block(cmp) -> str:
    """Runs side by side: who is who, per-pair verdict counts and notes, a kernel x backend
    matrix of geometric-mean time ratios, and every case with its ratio and the gate's
    verdict (rows most serious first)."""
    from .comparison import severity

    out = ["<section id=\"compare\"><h2>Compare</h2>",
           "<p class=\"small dim\">Each run is compared with run <b>A</b> (the baseline) by the "
           "same code as <code>kernbench gate</code>: ratio = current / baseline time "
           "(Hodges-Lehmann estimate, with its confidence interval); the verdict is the "
           "gate's. Ratios above 1 are slower.</p>"]
    runs = "".join(
        f"<tr><td class=\"rh\">{e(r.letter)}{' (baseline)' if i == 0 else ''}</td>"
        f"<td>{e(r.path)}</td><td>{e(r.header.get('suite'))}</td>"
        f"<td>{e(r.header.get('started'))}</td><td>{e(_commit(r.header))}</td>"
        f"<td>{e(_d(r.header, 'machine').get('cpu'))}</td>"
        f"<td>{e(r.header.get('fingerprint'))}</td></tr>" for i, r in enumerate(cmp.runs))
    out.append("<div class=\"scroll\"><table class=\"grid\"><thead><tr><th>run</th><th>file</th>"
               "<th>suite</th><th>started</th><th>commit</th><th>CPU</th><th>fingerprint</th>"
               f"</tr></thead><tbody>{runs}</tbody></table></div>")
    for pair in cmp.pairs:
        out.append(f"<h3>{e(pair.current.letter)} against A</h3><div class=\"chips\">"
                   + "".join(f"{_verdict_chip(v)}<span class=\"small\">{n}</span>"
                             for v, n in sorted(pair.counts.items(),
                                                key=lambda kv: severity(kv[0])))
                   + f"<span class=\"small dim\">mode: {e(pair.mode)}</span></div>")
        for note in pair.notes:
            out.append(f"<p class=\"callout\">{e(note)}</p>")
        if not pair.comparable:
            out.append("<p class=\"callout\">Timing verdicts were refused (the gate's rule for "
                       "runs from different machines or settings); ratios below are plain "
                       "ratios of medians, marked ≈. <code>kernbench report "
                       "--allow-foreign</code> judges them anyway.</p>")
        out.append(_pair_matrix(pair))
    out.append("<h3>Every case</h3>")
    out.append(_compare_table(cmp))
    out.append("</section>")
    return "\n".join(out)


def _commit(header: dict) -> str:
    git = header.get("git") if isinstance(header.get("git"), dict) else {}
    commit = str(git.get("commit") or "—")[:10]
    return commit + (" (dirty)" if git.get("dirty") else "")


def _ratio_colour(x: float | None, verdict: str) -> str:
    if verdict in ("regression", "failed"):
        return " style=\"background:#fdecea\""
    if verdict == "improvement":
        return " style=\"background:#e3f0fc\""
    if verdict == "inconclusive":
        return " style=\"background:#fff8e1\""
    return ""


def _pair_matrix(pair) -> str:
    if not pair.matrix:
        return ""
    head = ("<thead><tr><th class=\"sortable\">algorithm</th><th class=\"sortable\">dtype</th>"
            + "".join(f"<th class=\"sortable\" data-backend=\"{e(lab)}\">{wb(lab, True)}</th>"
                      for lab in pair.labels) + "</tr></thead>")
    rows = []
    for (kernel, dtype) in sorted(pair.matrix, key=lambda kd: (kd[0], dtype_key(kd[1]))):
        cells = pair.matrix[(kernel, dtype)]
        tds = [f"<td class=\"rh\">{e(kernel)}</td><td>{e(dtype)}</td>"]
        for lab in pair.labels:
            if lab not in cells:
                tds.append(f"<td data-backend=\"{e(lab)}\"></td>")
                continue
            ratio, worst, n = cells[lab]
            sort = f" data-sort=\"{ratio:.6g}\"" if ratio else ""
            tds.append(f"<td class=\"c\" data-backend=\"{e(lab)}\"{sort}"
                       f"{_ratio_colour(ratio, worst)} title=\"geometric mean of {n} case "
                       f"ratio(s); worst verdict {e(worst)}\">{e(fmt_ratio(ratio))}"
                       f"<div class=\"s st {e(worst)}\">{e(worst)}</div></td>")
        rows.append(f"<tr data-kernel=\"{e(kernel)}\" data-dtype=\"{e(dtype)}\">"
                    + "".join(tds) + "</tr>")
    return ("<p class=\"small dim\">Geometric-mean time ratio per algorithm, dtype and backend "
            "(current / baseline; below 1 is faster), with the worst verdict among its cases."
            "</p><div class=\"scroll\"><table class=\"grid summary\">" + head + "<tbody>"
            + "".join(rows) + "</tbody></table></div>")


def _compare_table(cmp) -> str:
    base = cmp.runs[0].letter
    head = ["<th class=\"sortable\">algorithm</th>", "<th class=\"sortable\">backend</th>",
            "<th class=\"sortable nw\">dtype</th>", "<th class=\"sortable nw\">shape</th>",
            f"<th class=\"sortable\">{e(base)}: median</th>"]
    for r in cmp.runs[1:]:
        head.append(f"<th class=\"sortable\">{e(r.letter)}: median · ratio · verdict</th>")
    head.append("<th>why</th>")
    rows = []
    for row in cmp.rows:
        base_cell = (f"<td data-sort=\"{row.base_median:.6g}\">{e(fmt_time(row.base_median))}</td>"
                     if row.base_median is not None else
                     f"<td class=\"dim\">{e(row.base_status or 'not in A')}</td>")
        cells = [f"<td class=\"rh\">{e(row.kernel)}</td><td>{wb(row.label)}</td>"
                 f"<td>{e(row.dtype)}</td><td>{wb(row.params)}</td>", base_cell]
        reasons = []
        for run, j in zip(cmp.runs[1:], row.judged):
            if j is None:
                cells.append("<td class=\"dim\">—</td>")
                continue
            c = j.comparison
            median = (fmt_time(c.current_s) if c.current_s is not None
                      else (j.status or "not in this run"))
            ratio = ""
            if j.ratio is not None:
                ratio = ("≈" if j.ratio_is_plain else "") + fmt_ratio(j.ratio)
                if c.ci is not None and all(math.isfinite(x) for x in c.ci):
                    lo, hi = (e(fmt_ratio(x)) for x in c.ci)
                    ratio += f" <span class=\"dim\">[{lo}–{hi}]</span>"
                elif c.ci is not None:
                    ratio += " <span class=\"dim\">[no interval: too few samples]</span>"
            thr = (f"<div class=\"s\">threshold ±{fmt_percent(c.threshold)}</div>"
                   if c.threshold is not None else "")
            sort = f" data-sort=\"{j.ratio:.6g}\"" if j.ratio else ""
            cells.append(f"<td class=\"c\"{sort}{_ratio_colour(j.ratio, c.verdict)}>"
                         f"<div class=\"t\">{e(median)}</div><div>{ratio}</div>{thr}"
                         f"<span class=\"st {e(c.verdict)}\" title=\""
                         f"{e(VERDICT_HELP.get(c.verdict, ''))}\">{e(c.verdict)}</span></td>")
            prefix = f"{run.letter}: " if len(cmp.runs) > 2 else ""
            reasons += [prefix + r for r in c.reasons]
        cells.append("<td class=\"small\">" + "<br>".join(e(r) for r in reasons) + "</td>")
        rows.append(f"<tr data-case=\"{e(row.id)}\" data-kernel=\"{e(row.kernel)}\" "
                    f"data-backend=\"{e(row.label)}\" data-dtype=\"{e(row.dtype)}\">"
                    + "".join(cells) + "</tr>")
    return ("<div class=\"scroll\"><table class=\"grid\"><thead><tr>" + "".join(head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
