"""The report's figures: matplotlib (Agg) rendered to SVG text for inlining in the HTML page.

Three per algorithm: median time against problem size per backend (log axes), a roofline with
this machine's measured ceilings and every case placed on it, and an accuracy heat map (error in
units of each dtype's machine epsilon, so formats compare on one scale). Interpreted timings are
left out of the two speed figures: they say nothing about the backend's speed.

The SVG is made safe to inline: text stays text (`svg.fonttype: none`), mathtext is off (a `$`
in a kernel name is just a dollar), element ids are salted per figure so several figures on one
page never share an id, and the XML prologue, doctype and metadata block are stripped (nothing
in the page refers to a URL). Each figure's axes say what they show and in which unit.
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from collections.abc import Callable

from ..metrics import gemm_roof, memory_roof
from .model import KernelSection, dtype_key, flags_of, label_of, median_of, num, sub
from .units import fmt_sci

#: Okabe-Ito (colour-blind safe), then a few more; backends keep their colour on every figure.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000",
           "#882255", "#44AA99", "#117733", "#999999", "#DDAA33")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
DTYPE_MARKERS = {"float64": "D", "float32": "o", "float16": "^", "bfloat16": "s"}
ROOF_STYLES = {"float64": ":", "float32": "-", "float16": "-.", "bfloat16": (0, (6, 2))}
RC = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.size": 9,
    "font.family": "sans-serif",
    "axes.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def available() -> str | None:
    """None when matplotlib can draw; otherwise why not (shown in place of the figures)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install 'kernbench[report]'): no figures"
    return None


def palette(labels: list[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker) per backend label, stable across every figure of a report."""
    return {lab: (COLOURS[i % len(COLOURS)], MARKERS[i % len(MARKERS)])
            for i, lab in enumerate(labels)}


def _render(salt: str, draw: Callable) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({**RC, "svg.hashsalt": salt}):
        fig = draw(plt)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)
    return clean_svg(buf.getvalue(), prefix=salt)


def clean_svg(svg: str, prefix: str = "fig") -> str:
    """Matplotlib's SVG document -> an `<svg>` element fit to inline and scale with the page.
    Element ids (and the references to them) get `prefix`, so several figures on one page never
    share one: matplotlib numbers its groups `axes_1`, `line2d_1`... in every figure."""
    svg = svg[svg.index("<svg"):]
    p = re.sub(r"[^A-Za-z0-9_-]+", "-", prefix)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{p}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{p}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{p}-\1"', svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    width = re.search(r'<svg[^>]*?\swidth="([\d.]+)pt"', svg)
    natural = float(width.group(1)) * 4 / 3 if width else 800.0  # pt -> CSS px
    svg = re.sub(r'(<svg[^>]*?)\swidth="[^"]*"\s+height="[^"]*"',
                 rf'\1 class="plot" style="max-width:{natural:.0f}px" role="img"', svg, count=1)
    return svg.strip()


def _log_axis(axis, unit: str | None = None) -> None:
    """Ticks at 1, 2 and 5 per decade, labelled in plain or engineering notation (the default
    log labels are mathtext, which this module turns off)."""
    from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    axis.set_major_formatter(EngFormatter(unit=unit, places=None) if unit is not None
                             else FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _size_axis(cases: list[dict]) -> tuple[str, str] | None:
    """Which figure measures a problem's size: the spec's FLOP count where every case has one,
    otherwise its minimum bytes moved."""
    if cases and all((num(c.get("flop_count")) or 0) > 0 for c in cases):
        return "flop_count", "FLOP"
    if cases and all((num(c.get("byte_count")) or 0) > 0 for c in cases):
        return "byte_count", "B"
    return None


def _timed(section: KernelSection) -> list[dict]:
    return [c for c in section.cases if median_of(c) is not None
            and "interpreted" not in flags_of(c)]


def _series_label(case: dict, multi_device: bool, multi_mode: bool) -> str:
    parts = [label_of(case)]
    if multi_mode:
        parts.append(str(case.get("mode")))
    if multi_device:
        parts.append(str(case.get("device")))
    return " · ".join(parts)


def time_plot(section: KernelSection, colours: dict[str, tuple[str, str]]) -> str | None:
    """Median time per call against problem size, one panel per dtype, one line per backend.
    Bars span the samples' interquartile range; hollow markers are timed but unranked cases."""
    import numpy as np

    cases = _timed(section)
    axis = _size_axis(cases)
    if not cases or axis is None:
        return None
    size_key, size_unit = axis
    size_label = ("problem size (FLOP per call, log)" if size_unit == "FLOP"
                  else "problem size (minimum bytes moved per call, log)")
    dtypes = sorted({str(c.get("dtype")) for c in cases}, key=dtype_key)
    multi_device = len({c.get("device") for c in cases}) > 1
    multi_mode = len({c.get("mode") for c in cases}) > 1

    def draw(plt):
        fig, axes = plt.subplots(1, len(dtypes), figsize=(min(4.2 * len(dtypes), 13), 3.4),
                                 squeeze=False, sharey=True)
        for ax, dtype in zip(axes[0], dtypes):
            series: dict[str, list[dict]] = defaultdict(list)
            for c in cases:
                if c.get("dtype") == dtype:
                    series[_series_label(c, multi_device, multi_mode)].append(c)
            for name in sorted(series, key=lambda n: list(colours).index(n.split(" · ")[0])
                               if n.split(" · ")[0] in colours else 99):
                pts = sorted(series[name], key=lambda c: num(c.get(size_key)) or 0)
                colour, marker = colours.get(label_of(pts[0]), ("#555555", "o"))
                xs = [num(c.get(size_key)) for c in pts]
                ys = [median_of(c) for c in pts]
                lo, hi = [], []
                for c, y in zip(pts, ys):
                    samples = [s for s in (sub(c, "time").get("samples_s") or [])
                               if isinstance(s, (int, float)) and s > 0]
                    q1, q3 = (np.percentile(samples, [25, 75]) if len(samples) >= 2
                              else (y, y))
                    lo.append(max(y - q1, 0.0))
                    hi.append(max(q3 - y, 0.0))
                ax.errorbar(xs, ys, yerr=[lo, hi], color=colour, marker=marker, ms=5,
                            lw=1.3, capsize=2, label=name, markerfacecolor=colour)
                hollow = [(x, y) for c, x, y in zip(pts, xs, ys) if c.get("status") != "ok"
                          or any(f in ("suspect", "inaccurate") for f in flags_of(c))]
                if hollow:
                    ax.plot(*zip(*hollow), linestyle="none", marker=marker, ms=9,
                            markerfacecolor="white", markeredgecolor="#C00000", mew=1.5)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(dtype)
            ax.set_xlabel(size_label)
            _log_axis(ax.xaxis, size_unit)
            _log_axis(ax.yaxis, "s")
            xs_all = [num(c.get(size_key)) for c in cases if c.get("dtype") == dtype]
            if min(xs_all) == max(xs_all):  # one size: give the log axis a decade around it
                ax.set_xlim(xs_all[0] / 3, xs_all[0] * 3)
            else:
                ax.margins(x=0.15)
        axes[0][0].set_ylabel("median time per call (log)")
        handles, names = [], []
        for ax in axes[0]:
            for h, n in zip(*ax.get_legend_handles_labels()):
                if n not in names:
                    handles.append(h)
                    names.append(n)
        fig.legend(handles, names, loc="upper center", ncol=min(len(names), 6),
                   bbox_to_anchor=(0.5, 1.02 + 0.05 * ((len(names) - 1) // 6)))
        fig.suptitle(f"{section.kernel}: time vs problem size", y=1.1 + 0.05 *
                     ((len(names) - 1) // 6), fontsize=11)
        fig.tight_layout()
        return fig

    return _render(f"{section.kernel}-time", draw)


def roofline_plot(section: KernelSection, header: dict,
                  colours: dict[str, tuple[str, str]]) -> str | None:
    """Achieved GFLOP/s against arithmetic intensity, under this machine's roofs: the copy
    bandwidth slope and one flat GEMM roof per dtype in the sweep."""
    cases = [c for c in _timed(section) if (num(c.get("gflops")) or 0) > 0
             and (num(c.get("intensity")) or 0) > 0]
    if not cases:
        return None
    ceilings = header.get("ceilings") if isinstance(header.get("ceilings"), dict) else {}
    devices = sorted({str(c.get("device") or "cpu") for c in cases})
    dtypes = sorted({str(c.get("dtype")) for c in cases}, key=dtype_key)

    def draw(plt):
        fig, axes = plt.subplots(1, len(devices), figsize=(9.0 * len(devices), 5.0),
                                 squeeze=False)
        for ax, device in zip(axes[0], devices):
            mine = [c for c in cases if str(c.get("device") or "cpu") == device]
            xs = [num(c.get("intensity")) for c in mine]
            ys = [num(c.get("gflops")) for c in mine]
            ceil = ceilings.get(device) or ceilings.get(device.split(":")[0]) or {}
            bw = memory_roof({k: num(ceil.get(k)) for k in ("copy_gbps", "update_gbps")}) \
                if isinstance(ceil, dict) else None
            gemm = ceil.get("gemm_gflops") if isinstance(ceil, dict) else None
            gemm = gemm if isinstance(gemm, dict) else {}
            roofs = {dt: gemm_roof({k: num(v) for k, v in gemm.items()}, dt) for dt in dtypes}
            peaks = {dt: r[0] for dt, r in roofs.items() if r[0]}
            ridges = [p / bw for p in peaks.values()] if bw else []
            x_lo = min(xs) / 3
            x_hi = max([*xs, *ridges]) * 3
            grid = [x_lo * (x_hi / x_lo) ** (i / 200) for i in range(201)]
            if bw:
                ax.plot(grid, [bw * x for x in grid], color="#444444", lw=1, ls="--",
                        label=f"memory roof {bw:.3g} GB/s")
            for dt, peak in sorted(peaks.items(), key=lambda kv: dtype_key(kv[0])):
                roof = [min(peak, bw * x) if bw else peak for x in grid]
                ax.plot(grid, roof, color="#444444", lw=1.6,
                        ls=ROOF_STYLES.get(dt, "-"),
                        label=f"{dt} GEMM roof {peak:.3g} GFLOP/s"
                        + (f" ({roofs[dt][1]})" if roofs[dt][1] else ""))
            for c, x, y in zip(mine, xs, ys):
                colour, _ = colours.get(label_of(c), ("#555555", "o"))
                marker = DTYPE_MARKERS.get(str(c.get("dtype")), "o")
                bad = c.get("status") != "ok" or any(
                    f in ("suspect", "inaccurate") for f in flags_of(c))
                ax.scatter([x], [y], s=36, marker=marker, color=colour, zorder=3,
                           edgecolors="#C00000" if bad else "white",
                           linewidths=1.6 if bad else 0.6)
            for lab in sorted({label_of(c) for c in mine}, key=lambda n: list(colours).index(n)
                              if n in colours else 99):
                ax.scatter([], [], s=36, marker="o", color=colours.get(lab, ("#555",))[0],
                           label=lab)
            for dt in sorted({str(c.get("dtype")) for c in mine}, key=dtype_key):
                ax.scatter([], [], s=36, marker=DTYPE_MARKERS.get(dt, "o"), color="#888888",
                           label=f"marker: {dt}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(x_lo, x_hi)
            _log_axis(ax.xaxis)
            _log_axis(ax.yaxis)
            ax.set_xlabel("arithmetic intensity (FLOP per byte of minimum traffic, log)")
            ax.set_ylabel("achieved GFLOP/s (log)")
            title = f"{section.kernel}: roofline ({device})"
            if not bw and not peaks:
                title += ": no ceilings in this run (calibration skipped)"
            ax.set_title(title)
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        return fig

    return _render(f"{section.kernel}-roofline", draw)


def accuracy_heatmap(section: KernelSection) -> str | None:
    """Relative L2 error / the dtype's machine epsilon, per backend (rows) and dtype × shape
    (columns), on a log colour scale; failing cells are outlined in red and marked ✗."""
    import numpy as np
    from matplotlib.colors import LogNorm

    points = section.points
    if not points:
        return None
    labels = [row.label for row in section.accuracy]
    columns = sorted({(p.dtype, p.params) for p in points},
                     key=lambda dp: (dtype_key(dp[0]), _shape_order(section, dp[1])))
    by = {(p.label, p.dtype, p.params): p for p in points}
    values = np.full((len(labels), len(columns)), np.nan)
    for i, lab in enumerate(labels):
        for j, (dt, params) in enumerate(columns):
            p = by.get((lab, dt, params))
            if p is not None and p.rel_l2_eps is not None:
                values[i, j] = p.rel_l2_eps
    finite = values[np.isfinite(values) & (values > 0)]
    vmin = max(float(finite.min()) if finite.size else 1e-3, 1e-3)
    vmax = max(float(finite.max()) if finite.size else 1.0, vmin * 10)

    names = [f"{dt}\n{_wrap(section.speed.shape(params))}" for dt, params in columns]
    lines = max(n.count("\n") + 1 for n in names)
    col_in = max(0.9, 0.075 * max(len(line) for n in names for line in n.split("\n")))

    def draw(plt):
        width = min(max(1.6 + col_in * len(columns) + 1.2, 7.0), 13.5)
        fig, ax = plt.subplots(figsize=(width, 0.9 + 0.16 * lines + 0.42 * len(labels)))
        shown = np.where(np.isfinite(values), np.clip(values, vmin, vmax), np.nan)
        cmap = plt.get_cmap("viridis").with_extremes(bad="#eeeeee")
        image = ax.imshow(np.ma.masked_invalid(shown), aspect="auto", cmap=cmap,
                          norm=LogNorm(vmin=vmin, vmax=vmax))
        for i, lab in enumerate(labels):
            for j, (dt, params) in enumerate(columns):
                p = by.get((lab, dt, params))
                if p is None:
                    ax.text(j, i, "n/a", ha="center", va="center", color="#777777", fontsize=7)
                    continue
                v = values[i, j]
                text = "NaN" if p.rel_l2 is None else (
                    "inf" if math.isinf(p.rel_l2) else fmt_sci(v))
                if p.passed is False:
                    text += " ✗"
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                               edgecolor="#C00000", lw=2.2))
                light = np.isfinite(v) and v > 0 and (
                    math.log(max(v, vmin)) - math.log(vmin)) > 0.6 * (
                    math.log(vmax) - math.log(vmin))
                ax.text(j, i, text, ha="center", va="center", fontsize=7.5,
                        color="black" if light or not np.isfinite(v) else "white")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xticks(range(len(columns)), names, fontsize=7.5)
        ax.grid(False)
        ax.set_xlabel("dtype and shape")
        ax.set_title(f"{section.kernel}: relative L2 error / machine epsilon of the dtype "
                     f"(✗ fails tolerance)", loc="left")
        bar = fig.colorbar(image, ax=ax, pad=0.01)
        bar.set_label("rel. L2 error / eps (log)")
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        bar.ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=8))
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_sci(v)))
        bar.ax.yaxis.set_minor_formatter(NullFormatter())
        fig.tight_layout()
        return fig

    return _render(f"{section.kernel}-accuracy", draw)


def _wrap(params: str, width: int = 18) -> str:
    """`a=1,b=2,c=3` over lines of about `width` characters, broken after commas."""
    lines, line = [], ""
    for part in params.split(","):
        candidate = f"{line},{part}" if line else part
        if line and len(candidate) > width:
            lines.append(line + ",")
            line = part
        else:
            line = candidate
    lines.append(line)
    return "\n".join(lines)


def _shape_order(section: KernelSection, params: str) -> int:
    for row in section.speed.rows:
        if row.key.params == params:
            return row.key.shape_rank
    return 0
