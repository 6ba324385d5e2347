"""The HTML report, `kernbench show` and compare mode, rendered from a fixed results file.

tests/data/report_fixture.jsonl is a small real run (softmax and matmul on every backend in
float64/float32/bfloat16, plus a deliberately broken kernel: a failure whose message holds HTML
markup, and an inaccurate result). Expected figures are computed here from the raw JSON, not
taken from the report's own model."""

import base64
import hashlib
import html
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kernbench.cli import main
from kernbench.compare import compare_runs
from kernbench.report import render_report
from kernbench.report.model import build
from kernbench.report.units import fmt_ratio
from kernbench.results import read_run
from kernbench.show import table

FIXTURE = Path(__file__).parent / "data" / "report_fixture.jsonl"
MARKUP = "<script>alert(1)</script>"


def records(path=FIXTURE):
    lines = path.read_text().splitlines()
    return json.loads(lines[0]), [json.loads(x) for x in lines[1:] if x.strip()]


def write(path, header, cases):
    path.write_text("\n".join(json.dumps(x) for x in [header, *cases]) + "\n")
    return path


def label(c):
    return f"{c['backend']}:{c['variant']}" if c.get("variant") else c["backend"]


@pytest.fixture(scope="module")
def page():
    return render_report([FIXTURE])


def sections(html):
    """{kernel: its section's html}."""
    found = re.findall(r'<section id="k\d+-[^"]*" data-kernel="([^"]*)">(.*?)</section>', html,
                       flags=re.S)
    return {k: body for k, body in found}


class _Balance(HTMLParser):
    TRACKED = {"section", "table", "thead", "tbody", "tr", "td", "th", "div", "figure", "svg"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        if tag in self.TRACKED:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.TRACKED:
            if not self.stack or self.stack[-1] != tag:
                self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            else:
                self.stack.pop()


def test_well_formed_and_self_contained(page):
    checker = _Balance()
    checker.feed(page)
    assert checker.errors == [] and checker.stack == []
    assert not re.search(r"""(?:src|href|xlink:href|action)\s*=\s*["']?\s*(?:https?:)?//""",
                         page, re.I)
    assert "@import" not in page
    assert not re.search(r"""url\(\s*['"]?(?!#)""", page)  # only url(#id) within the page
    # one script, ours, allowed by the page's Content-Security-Policy through its hash
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 1 and page.count("<script") == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"',
                                  page).group(1))
    # the whole policy, directive by directive: any added source (https:, *, a host) or
    # directive (connect-src ...) would re-open a network path
    policy = {d.split()[0]: set(d.split()[1:]) for d in csp.split(";") if d.strip()}
    assert policy == {"default-src": {"'none'"}, "style-src": {"'unsafe-inline'"},
                      "img-src": {"data:"}, "script-src": {f"'sha256-{digest}'"},
                      "base-uri": {"'none'"}, "form-action": {"'none'"}}, policy


def test_markup_from_results_is_escaped(page):
    assert MARKUP not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<b>bold</b>" not in page


def test_every_algorithm_has_its_tables_and_plots(page):
    header, cases = records()
    kernels = {c["kernel"] for c in cases}
    found = sections(page)
    assert set(found) == kernels
    for kernel, body in found.items():
        for title in ("Speed", "Memory", "Accuracy drift", "Compile time",
                      "Failures, skips and unsupported cases"):
            assert f"<h3>{title}</h3>" in body or f">{title}</h3>" in body, (kernel, title)
        svgs = re.findall(r"<svg\b.*?</svg>", body, flags=re.S)
        assert len(svgs) == 3, kernel  # time vs size, roofline, accuracy heat map
        assert all("<?xml" not in s and "DOCTYPE" not in s for s in svgs)
        time_svg, roof_svg, heat_svg = svgs
        assert "median time per call" in time_svg and "problem size" in time_svg
        assert "arithmetic intensity" in roof_svg and "GFLOP/s" in roof_svg
        assert "memory roof" in roof_svg  # the machine's ceiling is drawn
        assert "machine epsilon" in heat_svg
        # every backend of the kernel is a column of its speed table
        for lab in {label(c) for c in cases if c["kernel"] == kernel}:
            assert f'data-backend="{lab}"' in body
    # svg element ids are unique across the page (several figures inline)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_run_description(page):
    header, _ = records()
    for value in (header["machine"]["cpu"], header["software"]["torch"], header["suite"],
                  header["git"]["commit"], header["started"], header["fingerprint"]):
        assert str(value) in page
    copy = header["ceilings"]["cpu"]["copy_gbps"]
    assert f"copy {copy:.3g} GB/s" in page


def test_failures_skips_and_unsupported_all_listed(page):
    _, cases = records()
    bad = [c for c in cases if c["status"] != "ok"]
    assert {c["status"] for c in bad} >= {"failed", "unsupported"}
    model = build(read_run(FIXTURE))
    listed = [cid for s in model.kernels for p in s.problems for cid in p.ids]
    assert sorted(listed) == sorted(c["id"] for c in bad)
    for c in bad:
        escaped = (c["reason"].replace("&", "&amp;").replace("<", "&lt;")
                   .replace(">", "&gt;"))
        assert escaped in page


def _geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def test_summary_speedups_and_best_backend_match_the_raw_figures():
    _, cases = records()
    model = build(read_run(FIXTURE))
    html = render_report([FIXTURE], figures=False)
    ok = {(c["kernel"], label(c), c["dtype"], json.dumps(c["params"])): c for c in cases}

    def rankable(c):
        return (c["status"] == "ok" and c["accuracy"]["passed"]
                and not set(c.get("flags") or []) & {"interpreted", "suspect", "inaccurate"})

    checked = 0
    for kernel, dtype in (("softmax", "float32"), ("matmul", "float64"), ("softmax", "bfloat16")):
        shapes = {json.dumps(c["params"]) for c in cases if c["kernel"] == kernel}
        labels = {label(c) for c in cases if c["kernel"] == kernel}
        ref_dtype = dtype if dtype != "bfloat16" else "float32"  # numpy has no bfloat16
        row = next(r for r in model.summary if (r.kernel, r.dtype) == (kernel, dtype))
        times = {}
        for lab in labels:
            mine = [ok.get((kernel, lab, dtype, s)) for s in shapes]
            if all(m is not None and rankable(m) for m in mine):
                times[lab] = _geomean([m["time"]["median_s"] for m in mine])
                speed = _geomean([ok[(kernel, "numpy", ref_dtype, s)]["time"]["median_s"]
                                  / ok[(kernel, lab, dtype, s)]["time"]["median_s"]
                                  for s in shapes])
                assert row.cells[lab].geomean == pytest.approx(speed, rel=1e-9)
                assert fmt_ratio(speed) in html
                checked += 1
        assert row.best == min(times, key=times.get)
        assert "triton" not in times  # interpreted: never ranked
        assert row.cells["triton"].geomean is None and row.cells["triton"].note == "interpreted"
    assert checked >= 10


def test_interpreted_and_suspect_are_never_ranked(tmp_path):
    """Make the interpreted Triton case and a suspect case the fastest by far: neither may be
    marked fastest or best, and both carry their mark."""
    header, cases = records()
    target = "softmax/triton/cpu/float32/forward/rows=64,cols=128"
    suspect = "softmax/jax_jit/cpu/float32/forward/rows=64,cols=1000"
    for c in cases:
        if c["id"] in (target, suspect):
            c["time"]["median_s"] = 1e-9
            c["time"]["samples_s"] = [1e-9] * 5
        if c["id"] == suspect:
            c["flags"] = ["suspect"]
    path = write(tmp_path / "r.jsonl", header, cases)
    html = render_report([path], figures=False)
    for cid, mark in ((target, "INTERPRETED"), (suspect, "SUSPECT")):
        cell = re.search(rf'<td class="([^"]*)"[^>]*data-case="{re.escape(cid)}"[^>]*>(.*?)</td>',
                         html, flags=re.S)
        assert cell and "fastest" not in cell.group(1) and mark in cell.group(2)
    model = build(read_run(path))
    row = next(r for r in model.summary if (r.kernel, r.dtype) == ("softmax", "float32"))
    assert row.best not in ("triton", "jax_jit")
    text = table(path)
    assert "SUSPECT" in text and "INTERPRETED" in text


def test_accuracy_drift_across_dtypes(page):
    _, cases = records()
    model = build(read_run(FIXTURE))
    softmax = next(s for s in model.kernels if s.kernel == "softmax")
    assert softmax.accuracy_dtypes == ["float64", "float32", "bfloat16"]
    row = next(r for r in softmax.accuracy if r.label == "torch_eager")
    worst = {dt: max(c["accuracy"]["rel_l2"] for c in cases if c["kernel"] == "softmax"
                     and label(c) == "torch_eager" and c["dtype"] == dt)
             for dt in ("float64", "float32", "bfloat16")}
    growth = {(lo, hi): f for lo, hi, f in row.growth}
    assert growth[("float32", "bfloat16")] == pytest.approx(worst["bfloat16"] / worst["float32"])
    assert growth[("float64", "float32")] == pytest.approx(worst["float32"] / worst["float64"])
    # the Triton float64 softmax fails its tolerance: a FAIL badge, not a pass
    triton = next(r for r in softmax.accuracy if r.label == "triton")
    assert triton.cells["float64"].passed == 0 and triton.cells["float32"].passed == 2
    assert "FAIL 0/2" in page


def test_records_missing_fields_do_not_crash(tmp_path):
    header, cases = records()
    header.pop("ceilings")
    header.pop("machine")
    slim = []
    for i, c in enumerate(cases[:30]):
        c = dict(c)
        for key in (("time", "memory", "compile", "gflops", "gbps", "intensity"),
                    ("accuracy", "flags", "roofline_fraction"), ("compile_s", "params"))[i % 3]:
            c.pop(key, None)
        c["future_field"] = {"x": [1, 2]}
        slim.append(c)
    slim.append({"type": "case", "id": "odd/numpy/cpu/float32/forward/n=1", "status": "timeout",
                 "kernel": "odd", "backend": "numpy", "reason": None})
    slim.append({"type": "case", "id": "odd/numpy/cpu/float32/forward/n=2", "status": "ok",
                 "kernel": "odd", "backend": "numpy", "dtype": "float32",
                 "accuracy": {"rel_l2": None, "nonfinite": 3, "passed": False},
                 "time": {"median_s": "inf"}})
    path = write(tmp_path / "slim.jsonl", header, slim)
    html = render_report([path])
    assert "odd" in sections(html)
    assert "(no reason recorded)" in html
    assert "none: calibration skipped" in html
    assert table(path)


def test_show_terminal_and_markdown():
    _, cases = records()
    text = table(FIXTURE)
    for kernel in {c["kernel"] for c in cases}:
        assert f"== {kernel}" in text
    assert MARKUP in text  # the terminal shows it verbatim (it is text there)
    assert "INACCURATE" in text and "INTERPRETED" in text
    md = table(FIXTURE, markdown=True)
    assert MARKUP not in md and "&lt;script&gt;" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows
    for line in rows:  # escaped pipes cannot break a row
        header_cells = len(re.split(r"(?<!\\)\|", line))
        assert header_cells >= 4


def test_report_command(tmp_path, capsys):
    out = tmp_path / "sub" / "r.html"
    assert main(["report", str(FIXTURE), "-o", str(out), "--no-plots"]) == 0
    assert out.is_file() and "report:" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "absent.jsonl"), "-o", str(out)]) == 2
    assert main(["report", str(FIXTURE), "--reference", "nosuch", "-o", str(out)]) == 2
    assert main(["show", str(FIXTURE), "--markdown"]) == 0


def test_compare_mode_two_files(tmp_path):
    """A copy of the fixture with one case clearly slower (tight samples) and one crashed: the
    compare section shows each case's ratio and exactly the gate's verdict."""
    header, cases = records()
    slow = "softmax/numpy/cpu/float32/forward/rows=64,cols=1000"
    crash = "matmul/torch_eager/cpu/float32/forward/m=64,n=64,k=64"
    base_cases, cur_cases = [], []
    for c in cases:
        b, k = json.loads(json.dumps(c)), json.loads(json.dumps(c))
        if c["id"] == slow:
            b["time"]["samples_s"] = [1e-4 * (1 + 0.001 * i) for i in range(20)]
            k["time"]["samples_s"] = [2e-4 * (1 + 0.001 * i) for i in range(20)]
        if c["id"] == crash:
            k = {key: k[key] for key in ("type", "id", "kernel", "backend", "variant", "device",
                                         "dtype", "mode", "params")}
            k.update(status="crashed", reason="signal 11 <img src=x onerror=alert(1)>")
        base_cases.append(b)
        cur_cases.append(k)
    base = write(tmp_path / "base.jsonl", header, base_cases)
    cur = write(tmp_path / "head.jsonl", dict(header, run_id="head"), cur_cases)
    html = render_report([base, cur], figures=False)
    assert 'id="compare"' in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    verdicts = {c.id: c for c in compare_runs(read_run(base), read_run(cur))}
    assert verdicts[slow].verdict == "regression" and verdicts[crash].verdict == "failed"
    for cid, comp in verdicts.items():
        row = re.search(rf'<tr data-case="{re.escape(cid)}"[^>]*>(.*?)</tr>', html, flags=re.S)
        assert row, cid
        assert f'class="st {comp.verdict}"' in row.group(1)
    row = re.search(rf'<tr data-case="{re.escape(slow)}"[^>]*>(.*?)</tr>', html, flags=re.S)
    assert fmt_ratio(verdicts[slow].ratio) in row.group(1)
    assert verdicts[slow].ratio == pytest.approx(2.0, rel=0.01)
    # the most serious rows come first
    order = re.findall(r'<tr data-case="([^"]+)"', html)
    assert order.index(crash) < order.index(slow) < len(order) - 1


def test_compare_mode_three_files(tmp_path):
    header, cases = records()
    paths = [write(tmp_path / f"r{i}.jsonl", dict(header, run_id=f"r{i}"), cases)
             for i in range(3)]
    html = render_report(paths, figures=False)
    assert "B against A" in html and "C against A" in html
    assert "C: median · ratio · verdict" in html


def test_report_never_imports_a_framework(tmp_path):
    """The report reads result files only: rendering one imports no torch, jax, numba, triton."""
    import subprocess
    import sys

    code = ("import sys; from kernbench.report import write_report; "
            f"write_report([{str(FIXTURE)!r}], {str(tmp_path / 'r.html')!r}); "
            "print(sorted(m for m in ('torch', 'jax', 'numba', 'triton') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True)
    assert out.stdout.strip() == "[]"


def test_units():
    from kernbench.report.units import fmt_bytes, fmt_percent, fmt_time, geomean, num

    assert [fmt_time(x) for x in (13.2, 2.31e-3, 1.48e-5, 4e-8, None)] == [
        "13.2 s", "2.31 ms", "14.8 µs", "40 ns", "—"]
    assert fmt_bytes(67240) == "65.7 KiB" and fmt_bytes(512) == "512 B"
    assert fmt_ratio(1) == "1.00×" and fmt_ratio(0.0402) == "0.0402×"
    assert fmt_percent(0.095) == "10%" and fmt_percent(0.0019) == "0.19%"
    assert num("inf") == math.inf and num(True) is None and num(float("nan")) is None
    assert geomean([2.0, 8.0]) == pytest.approx(4.0) and geomean([]) is None


def test_shared_parameters_listed_once(tmp_path):
    """Long parameter lists (an optimizer's lr, betas, eps) are shown once per algorithm; rows
    keep the parameters that vary."""
    header, cases = records()
    base = next(c for c in cases if c["id"].startswith("softmax/numpy/cpu/float32"))
    made = []
    for numel in (1000, 2000):
        c = json.loads(json.dumps(base))
        c["kernel"] = "opt"
        c["params"] = {"numel": numel, "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
        c["id"] = f"opt/numpy/cpu/float32/forward/numel={numel}"
        made.append(c)
    path = write(tmp_path / "opt.jsonl", header, made)
    section = build(read_run(path)).kernels[0]
    assert section.fixed == "lr=0.001,beta1=0.9,beta2=0.999,eps=1e-08"
    assert [section.speed.shape(r.key.params) for r in section.speed.rows] == [
        "numel=1000", "numel=2000"]
    assert "every case: lr=0.001" in table(path)


def test_markup_in_every_field_is_escaped(tmp_path):
    """Not only reasons: markup in header fields (machine, suite, settings, software) and in a
    case's kernel, variant and parameter names must reach the page as text."""
    header, cases = records()
    markup = "<img src=x onerror=alert(1)>"
    header["machine"]["cpu"] = "CPU" + markup
    header["suite"] = "s" + markup
    header["settings"]["allocator"] = "a" + markup
    header["software"]["numpy"] = "2" + markup
    case = dict(cases[0], kernel="k" + markup, backend="numpy", variant="v" + markup,
                params={"rows" + markup: 3}, id="k/numpy:v/cpu/float32/forward/x")
    page = render_report([write(tmp_path / "r.jsonl", header, [*cases, case])])
    assert "<img" not in page
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") >= 6
    checker = _Balance()
    checker.feed(page)
    assert checker.errors == [] and checker.stack == []


def _tight(cases, scale=1.0):
    """Every timed case's samples replaced by 20 tight ones around its median (times `scale`):
    identical runs are then judged `same`, not `inconclusive` for the fixture's real noise."""
    for c in cases:
        if isinstance(c.get("time"), dict) and c["time"].get("samples_s"):
            m = c["time"]["median_s"] * scale
            c["time"]["samples_s"] = [m * (1 + 0.001 * i) for i in range(20)]
    return cases


def test_compare_mode_three_files_judges_each_run_against_the_first(tmp_path):
    """A, B, C: B is slower on one case and lost accuracy on another, C is a copy of A. C must be
    judged against A (every case unchanged), not against B (which would make C's copy of the
    slow case an improvement)."""
    header, cases = records()
    slow = "softmax/numpy/cpu/float32/forward/rows=64,cols=1000"
    worse = "matmul/numba/cpu/float64/forward/m=64,n=64,k=64"
    a_cases = _tight(cases)
    b_cases = json.loads(json.dumps(a_cases))
    for c in b_cases:
        if c["id"] == slow:
            c["time"]["samples_s"] = [2 * x for x in c["time"]["samples_s"]]
        if c["id"] == worse:
            c["accuracy"].update(rel_l2=1.0, passed=False)
    paths = [write(tmp_path / "a.jsonl", dict(header, run_id="a"), a_cases),
             write(tmp_path / "b.jsonl", dict(header, run_id="b"), b_cases),
             write(tmp_path / "c.jsonl", dict(header, run_id="c"), a_cases)]
    html = render_report(paths, figures=False)
    checked = 0
    for c in cases:
        row = re.search(rf'<tr data-case="{re.escape(c["id"])}"[^>]*>(.*?)</tr>', html, flags=re.S)
        assert row, c["id"]
        b_verdict, c_verdict = re.findall(r'<span class="st ([^"]+)"', row.group(1))
        # a copy of the baseline: no change anywhere; interpreted timings are never judged
        timed = c["status"] == "ok" and "interpreted" not in c["flags"]
        interpreted = c["status"] == "ok" and "interpreted" in c["flags"]
        assert c_verdict == ("inconclusive" if interpreted else "same"), (c["id"], c_verdict)
        checked += timed
        if c["id"] == slow:
            assert b_verdict == "regression"
        if c["id"] == worse:
            assert b_verdict == "failed"
    assert checked >= 40


def test_compare_mode_foreign_machine_shows_plain_ratios_only(tmp_path):
    """B comes from another machine (fingerprint) and is 2x slower everywhere: the gate refuses
    timing verdicts, so each case shows the plain ratio of medians marked ≈, and the matrix
    (geometric means of estimates) shows no figure at all rather than plain ratios."""
    header, cases = records()
    a_cases = _tight(cases)
    b_cases = _tight(json.loads(json.dumps(cases)), scale=2.0)
    foreign = dict(header, run_id="b", fingerprint="0123456789ab",
                   machine=dict(header["machine"], cpu="Some other CPU"))
    paths = [write(tmp_path / "a.jsonl", header, a_cases),
             write(tmp_path / "b.jsonl", foreign, b_cases)]
    html = render_report(paths, figures=False)
    compare = re.search(r'<section id="compare">(.*?)</section>', html, flags=re.S).group(1)
    # per case: every ok, non-interpreted case shows ≈2.00× (samples scaled exactly by 2)
    timed = [c for c in cases if c["status"] == "ok" and "interpreted" not in c["flags"]]
    assert len(timed) >= 40
    for c in timed:
        row = re.search(rf'<tr data-case="{re.escape(c["id"])}"[^>]*>(.*?)</tr>', compare,
                        flags=re.S)
        assert row, c["id"]
        cell = re.findall(r'<td class="c"[^>]*>(.*?)</td>', row.group(1), flags=re.S)
        assert len(cell) == 1 and "<div>≈" + fmt_ratio(2.0) in cell[0], (c["id"], cell)
    # the matrix: the table between "B against A" and "Every case"
    pair = compare.split("<h3>B against A</h3>", 1)[1].split("<h3>Every case</h3>", 1)[0]
    assert "ratios of medians, marked ≈" in pair
    matrix = re.findall(r'<table class="grid summary">(.*?)</table>', pair, flags=re.S)
    assert len(matrix) == 1
    cells = re.findall(r'<td class="c" data-backend="([^"]*)"[^>]*>(.*?)<div class="s st',
                       matrix[0], flags=re.S)
    labels = {lab for lab, _ in cells}
    assert {"numpy", "numba", "torch_eager", "jax_jit"} <= labels
    assert cells and all(text == "—" for _, text in cells), cells
    assert "data-sort" not in matrix[0].split("</thead>", 1)[1]


def _params(c):
    return ",".join(f"{k}={v}" for k, v in c["params"].items())


def test_speed_cells_show_the_bound_rate(page):
    """GFLOP/s where the roofline at the case's intensity is the GEMM roof (compute-bound),
    GB/s where it is the copy-bandwidth slope; the figure is the raw count over the median."""
    header, cases = records()
    ceil = header["ceilings"]["cpu"]
    found = {"GFLOP/s": set(), "GB/s": set()}
    for c in cases:
        if (c["kernel"] not in ("matmul", "softmax") or c["status"] != "ok"
                or "interpreted" in c["flags"]):
            continue
        median = c["time"]["median_s"]
        intensity = c["flop_count"] / c["byte_count"]
        compute = ceil["copy_gbps"] * intensity >= ceil["gemm_gflops"][c["dtype"]]
        unit, count = ("GFLOP/s", c["flop_count"]) if compute else ("GB/s", c["byte_count"])
        cell = re.search(rf'<td class="c[^"]*"[^>]*data-case="{re.escape(c["id"])}"[^>]*>'
                         r'.*?<div class="s">(.*?)</div>', page, flags=re.S)
        assert cell, c["id"]
        assert f"<span>{count / median / 1e9:.3g} {unit}</span>" in cell.group(1), (
            c["id"], cell.group(1))
        found[unit].add(c["kernel"])
    # the fixture has both: float64 GEMMs above the ridge point, every softmax below it
    assert found == {"GFLOP/s": {"matmul"}, "GB/s": {"matmul", "softmax"}}


def test_memory_cells_show_peak_over_output_bytes(page):
    """The memory table's second line is peak bytes over output bytes (the least a call must
    allocate), from the raw record, for every cell with a nonzero peak."""
    _, cases = records()
    found = sections(page)
    checked = 0
    every = {}
    for kernel in ("softmax", "matmul"):
        memory = found[kernel].split("<h3>Memory</h3>", 1)[1].split("<h3>", 1)[0]
        rows = re.findall(r'<tr[^>]*data-dtype="([^"]*)"><td class="rh"[^>]*title="([^"]*)">'
                          r'(.*?)</tr>', memory, flags=re.S)
        cells = {(dt, params, lab): cell for dt, params, body in rows
                 for lab, cell in re.findall(r'<td class="c[^"]*" data-backend="([^"]*)"[^>]*>'
                                             r'(.*?)</td>', body, flags=re.S)}
        for c in cases:
            m = c.get("memory") or {}
            if c["kernel"] != kernel or c["status"] != "ok" or not m.get("peak_bytes"):
                continue
            cell = cells[(c["dtype"], _params(c), label(c))]
            ratio = fmt_ratio(m["peak_bytes"] / m["output_bytes"])
            assert f"{ratio} of output</div>" in cell, (c["id"], cell)
            every[c["id"]] = cell
            checked += 1
    assert checked >= 20
    # one figure by hand: jax's bfloat16 softmax peaks at 49408 bytes for a 16384-byte output
    assert "3.02× of output" in every["softmax/jax_jit/cpu/bfloat16/forward/rows=64,cols=128"]


def test_markdown_escapes_pipes_and_backticks(tmp_path):
    """A `|` in a kernel, variant or parameter name would split a markdown table cell and
    shift every column after it; a backtick would open a code span. Every row must keep its
    header's cell count, and no backtick or pipe from the data may go unescaped."""
    header, cases = records()
    odd = json.loads(json.dumps(next(c for c in cases
                                      if c["id"] == "softmax/numba/cpu/float32/forward/rows=64,"
                                                    "cols=128")))
    odd.update(kernel="soft|max`x`", variant="v|`w`", params={"rows": "6|4", "cols": "`1`"},
               id="soft|max/numba:v|w/cpu/float32/forward/rows=6|4")
    failed = json.loads(json.dumps(next(c for c in cases if c["status"] == "failed")))
    failed.update(id=failed["id"] + "|x", reason="bad | worse `code` | end")
    path = write(tmp_path / "r.jsonl", header, [*cases, odd, failed])
    md = table(path, markdown=True)
    lines = md.splitlines()
    cell_split = re.compile(r"(?<!\\)\|")
    tables = 0
    i = 0
    while i < len(lines):
        if not lines[i].startswith("|"):
            i += 1
            continue
        head = len(cell_split.split(lines[i]))
        assert re.fullmatch(r"\|(---\|)+", lines[i + 1]), lines[i + 1]
        assert lines[i + 1].count("---") == head - 2
        i += 2
        while i < len(lines) and lines[i].startswith("|"):
            assert len(cell_split.split(lines[i])) == head, lines[i]
            i += 1
        tables += 1
    assert tables == 1 + len({c["kernel"] for c in cases}) + 1  # summary, kernels, soft|max
    assert "soft\\|max\\`x\\`" in md and "v\\|\\`w\\`" in md
    assert "bad \\| worse \\`code\\` \\| end" in md
    assert not re.search(r"(?<!\\)`", md)
