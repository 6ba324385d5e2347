"""pytest-benchmark's JSON format, both ways, for people whose tools already read it.

Export (`kernbench export RESULTS -o FILE.json`): every ok case becomes one benchmark, named by
its case id, with the stats pytest-benchmark computes (min, max, mean, stddev, median, quartiles,
outliers, ops, ...) derived from the kept samples, the samples themselves as `data` (as with
`--benchmark-save-data`) and the block length as `iterations`, so `pytest-benchmark compare` and
github-action-benchmark (`tool: pytest`) can read our runs. Failed cases are left out, as
pytest-benchmark leaves out benchmarks that raised; their status is kernbench's to gate.

Import (`kernbench gate` given a `.json` file): each benchmark becomes an ok case whose samples
are its `data` (a file saved without `--benchmark-save-data` has none, and gets no timing
verdict), so two pytest-benchmark files can be gated with kernbench's statistics.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from bisect import bisect_left, bisect_right
from pathlib import Path

from .errors import UsageError
from .paths import writable_file, write_output
from .results import SCHEMA, RunFile, latest_by_id, read_run

#: The pytest-benchmark format version this export follows.
FORMAT_VERSION = "5.1.0"
#: The node id prefix of the pytest-benchmark tests in suites/ (suites/test_suites.py), so an
#: exported case and the same case run under pytest share a fullname.
NODE_PREFIX = "suites/test_suites.py::test_case"


def quartiles(data: list[float]) -> tuple[float, float]:
    """Q1 and Q3 as pytest-benchmark reports them: medians of the lower and upper halves for an
    even count; for an odd count, the weighted order statistics of its 'method 3'."""
    s = sorted(data)
    n = len(s)
    if n == 1:
        return s[0], s[0]
    if n % 2 == 0:
        return statistics.median(s[:n // 2]), statistics.median(s[n // 2:])
    k, r = divmod(n, 4)
    if r == 1:
        return 0.25 * s[k - 1] + 0.75 * s[k], 0.75 * s[3 * k] + 0.25 * s[3 * k + 1]
    return 0.75 * s[k] + 0.25 * s[k + 1], 0.25 * s[3 * k + 1] + 0.75 * s[3 * k + 2]


def stats(data: list[float], iterations: int) -> dict:
    """pytest-benchmark's `stats` block for per-call times `data`."""
    s = sorted(data)
    n = len(s)
    mean = statistics.fmean(s)
    sd = statistics.stdev(s) if n > 1 else 0.0
    q1, q3 = quartiles(s)
    iqr = q3 - q1
    low = s[bisect_left(s, q1 - 1.5 * iqr)] if n > 1 else s[0]
    high = s[bisect_right(s, q3 + 1.5 * iqr) - 1] if n > 1 else s[0]
    iqr_out = sum(1 for x in s if x < q1 - 1.5 * iqr or x > q3 + 1.5 * iqr)
    sd_out = sum(1 for x in s if x < mean - sd or x > mean + sd)
    return {"min": s[0], "max": s[-1], "mean": mean, "stddev": sd, "rounds": n,
            "median": statistics.median(s), "iqr": iqr, "q1": q1, "q3": q3,
            "iqr_outliers": iqr_out, "stddev_outliers": sd_out,
            "outliers": f"{sd_out};{iqr_out}", "ld15iqr": low, "hd15iqr": high,
            "ops": 1.0 / mean if mean > 0 else math.inf, "total": math.fsum(s),
            "data": list(data), "iterations": iterations}


def to_pytest_benchmark(run: RunFile) -> dict:
    """A run as a pytest-benchmark JSON document."""
    h = run.header
    mach = h.get("machine") or {}
    soft = h.get("software") or {}
    git = h.get("git") or {}
    benchmarks = []
    for c in latest_by_id(run.cases).values():
        t = c.get("time") or {}
        samples = [float(x) for x in t.get("samples_s") or [] if isinstance(x, (int, float))]
        if c.get("status") != "ok" or not samples:
            continue
        benchmarks.append({
            "group": c.get("kernel"), "name": c["id"], "fullname": f"{NODE_PREFIX}[{c['id']}]",
            "params": {"case": c["id"]}, "param": c["id"],
            "extra_info": {k: c.get(k) for k in ("kernel", "backend", "variant", "device",
                                                 "dtype", "mode", "params", "gflops", "gbps",
                                                 "compile_s", "flags")}
            | {"kernbench_id": c["id"], "kernbench_run_id": h.get("run_id"),
               "fingerprint": h.get("fingerprint")},
            # kernbench's own protocol (calibrated blocks, rotated inputs) stands behind these
            "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 1,
                        "max_time": None, "min_time": None, "warmup": True},
            "stats": stats(samples, int(t.get("per_sample_calls") or 1)),
        })
    return {
        "machine_info": {"node": mach.get("hostname"), "processor": mach.get("arch"),
                         "machine": mach.get("arch"), "python_implementation": "CPython",
                         "python_version": soft.get("python"), "system": mach.get("os"),
                         "cpu": {"brand_raw": mach.get("cpu"), "count": mach.get("cores")},
                         "kernbench_fingerprint": h.get("fingerprint"), "software": soft},
        "commit_info": {"id": git.get("commit"), "branch": git.get("branch"),
                        "dirty": git.get("dirty"), "project": "kernbench"},
        "benchmarks": benchmarks,
        "datetime": h.get("started"),
        "version": FORMAT_VERSION,
    }


def export(results: str | Path, output: str | Path) -> int:
    """Write `results` as pytest-benchmark JSON to `output`; returns the number of benchmarks."""
    out = writable_file(output, "-o", inputs=[results])
    doc = to_pytest_benchmark(read_run(results))
    write_output(out, json.dumps(doc, indent=1, allow_nan=False) + "\n")
    return len(doc["benchmarks"])


def from_pytest_benchmark(path: str | Path) -> RunFile:
    """A pytest-benchmark JSON file as a RunFile of ok cases (samples from `stats.data`)."""
    where = str(path)
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{where}: not a readable pytest-benchmark JSON file: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise UsageError(f"{where}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    info = doc.get("machine_info") or {}
    cpu = info.get("cpu") or {}
    fp = info.get("kernbench_fingerprint") or hashlib.sha256(repr(
        [cpu.get("brand_raw"), cpu.get("count"), info.get("python_version"),
         info.get("machine")]).encode()).hexdigest()[:12]
    commit = doc.get("commit_info") or {}
    header = {"type": "run", "schema": SCHEMA, "suite": "pytest-benchmark",
              "started": doc.get("datetime"), "fingerprint": fp,
              "machine": {"cpu": cpu.get("brand_raw"), "cores": cpu.get("count")},
              "software": info.get("software") or {"python": info.get("python_version")},
              "git": {"commit": commit.get("id"), "branch": commit.get("branch"),
                      "dirty": commit.get("dirty")},
              "settings": {}, "imported_from": "pytest-benchmark"}
    cases = []
    for i, b in enumerate(doc["benchmarks"]):
        if not isinstance(b, dict) or "name" not in b:
            raise UsageError(f"{where}: benchmarks[{i}] has no name")
        st = b.get("stats") or {}
        extra = b.get("extra_info") or {}
        if not isinstance(st, dict) or not isinstance(extra, dict):
            raise UsageError(f"{where}: benchmarks[{i}]: 'stats' and 'extra_info' must be "
                             f"objects")
        data = [float(x) for x in st.get("data") or [] if isinstance(x, (int, float))]
        iterations = st.get("iterations") or 1
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise UsageError(f"{where}: benchmarks[{i}]: stats.iterations must be a whole "
                             f"number of at least 1, got {iterations!r}")
        if not isinstance(extra.get("params") or {}, dict) or \
                not isinstance(extra.get("flags") or [], list):
            raise UsageError(f"{where}: benchmarks[{i}]: extra_info.params must be an object "
                             f"and extra_info.flags a list")
        cid = str(extra.get("kernbench_id") or b["name"])
        cases.append({"type": "case", "id": cid,
                      "kernel": str(extra.get("kernel") or b.get("group") or b["name"]),
                      "backend": str(extra.get("backend") or ""),
                      "variant": extra.get("variant") or "", "dtype": extra.get("dtype") or "",
                      "device": extra.get("device") or "", "params": extra.get("params") or {},
                      "status": "ok", "reason": None, "flags": list(extra.get("flags") or []),
                      "time": {"samples_s": data,
                               "per_sample_calls": iterations}})
    return RunFile(where, header, cases)
