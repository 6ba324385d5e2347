"""A timing that does not wait for the work (here: a kernel that returns a remembered result
for inputs it has seen, as a missing synchronisation would) is flagged `suspect`; an honest one
past a roof measured too low is told apart by measuring the roof again (`roof_rose`)."""

from kernbench.cli import main
from kernbench.results import read_run

from .conftest import ROOT, write_kernel

SPEC = (ROOT / "kernels" / "softmax" / "spec.py").read_text()
GOOD = (ROOT / "kernels" / "softmax" / "softmax_numpy.py").read_text()
CHEAT = GOOD + """
_f = forward
_seen = {}
def forward(x):
    key = id(x)
    if key not in _seen:
        _seen[key] = (x, _f(x))
    return _seen[key][1]
"""


def _run_with_ceilings(tmp_path, backends: dict[str, str], ceilings: str):
    """A 2048x2048 softmax run against hand-written ceilings; returns the case and `show`."""
    write_kernel(tmp_path / "k", "sm", SPEC, backends)
    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nbackends = ["numpy"]\nbudget_s = 0.05\nwarm_cache = true\n'
                     '[kernels.sm]\nparams = { rows = [2048], cols = [2048] }\n')
    out = tmp_path / "r.jsonl"
    ceil_dir = tmp_path / "c"
    ceil_dir.mkdir()
    import kernbench.ceilings as c

    old = c.CACHE_DIR
    c.CACHE_DIR = ceil_dir
    try:
        from kernbench import environment

        fp = environment.fingerprint(environment.machine(), environment.software())
        (ceil_dir / f"{fp}-t2.json").write_text(ceilings)
        assert main(["run", str(suite), "--kernels", str(tmp_path / "k"), "-o", str(out),
                     "--no-progress", "--threads", "2"]) == 0
    finally:
        c.CACHE_DIR = old
    (case,) = read_run(out).cases
    return case, out


def test_too_fast_is_suspect(tmp_path):
    case, _ = _run_with_ceilings(tmp_path, {"numpy": CHEAT},
                                 '{"cpu": {"copy_gbps": 40.0, "read_gbps": 40.0, '
                                 '"gemm_gflops": {}}}')
    assert case["status"] == "ok"  # it is accurate: only its timing lies
    assert "suspect" in case["flags"], case["gbps"]
    # the memory roof was measured again after the case, and the case is far past that too
    recheck = case["roof_recheck"]
    assert recheck["copy_gbps"] > 1 and recheck["update_gbps"] > 1
    assert case["gbps"] > 10 * max(recheck["copy_gbps"], recheck["update_gbps"])


def test_a_roof_measured_too_low_is_rechecked(tmp_path, capsys):
    """An honest case past the run's memory roof (here a roof written 50x too low, as a VM
    whose bandwidth rose during the run would have) is measured against the roof re-measured
    right after it: within that one, it is flagged roof_rose and stays ranked."""
    case, out = _run_with_ceilings(tmp_path, {"numpy": GOOD},
                                   '{"cpu": {"copy_gbps": 0.5, "update_gbps": 0.6, '
                                   '"read_gbps": 0.5, "gemm_gflops": {}}}')
    assert case["status"] == "ok" and case["gbps"] > 0.5 * 1.5, case["gbps"]
    assert "suspect" not in case["flags"] and "roof_rose" in case["flags"], case
    assert case["roof_recheck"]["copy_gbps"] > case["gbps"] / 1.1
    assert case["roofline_fraction"] > 1.5  # still against the run's roof, as every case's
    err = capsys.readouterr().err  # where the run's ceilings came from, and how old they are
    assert "ceilings: copy 0.5 GB/s, update 0.6 GB/s from " in err and "c/" in err, err
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "ROOF-ROSE" in shown and "1 timed case flagged ROOF ROSE" in shown
    assert "run: 0.5" not in shown  # the figures are the report's tooltip, not show's text
    page = tmp_path / "r.html"
    assert main(["report", str(out), "-o", str(page), "--no-plots"]) == 0
    html = page.read_text()
    assert ">ROOF ROSE</span>" in html and "1 timed case flagged ROOF ROSE" in html
    assert "(run: 0.5)" in html and "(run: 0.6)" in html  # both roofs, in the tooltip


def test_one_remeasured_roof_serves_a_while(monkeypatch):
    """A backend that misses a synchronisation is suspect in every case: the roof is measured
    again at most once per max_age_s, and a failed measurement is not retried before then."""
    from kernbench import ceilings

    calls = []

    def fake(threads, env, memory_only=False, timeout=600):
        calls.append(memory_only)
        if len(calls) == 2:
            raise RuntimeError("calibration failed")
        return {"copy_gbps": 50.0 + len(calls)}

    monkeypatch.setattr(ceilings, "measure_in_subprocess", fake)
    clock = [100.0]
    monkeypatch.setattr(ceilings.time, "monotonic", lambda: clock[0])
    recheck = ceilings.MemoryRecheck(2, {}, max_age_s=60)
    assert recheck.now() == {"copy_gbps": 51.0} and recheck.now() == {"copy_gbps": 51.0}
    clock[0] += 61
    assert recheck.now() is None and recheck.now() is None  # failed: the case stays suspect
    clock[0] += 61
    assert recheck.now() == {"copy_gbps": 53.0}
    assert calls == [True, True, True]
