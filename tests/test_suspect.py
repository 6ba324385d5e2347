"""A timing that does not wait for the work (here: a kernel that returns a remembered result
for inputs it has seen, as a missing synchronisation would) is flagged `suspect`."""

from kernbench.cli import main
from kernbench.results import read_run

from .conftest import ROOT, write_kernel

SPEC = (ROOT / "kernels" / "softmax" / "spec.py").read_text()
CHEAT = (ROOT / "kernels" / "softmax" / "softmax_numpy.py").read_text() + """
_f = forward
_seen = {}
def forward(x):
    key = id(x)
    if key not in _seen:
        _seen[key] = (x, _f(x))
    return _seen[key][1]
"""


def test_too_fast_is_suspect(tmp_path):
    write_kernel(tmp_path / "k", "cheat", SPEC, {"numpy": CHEAT})
    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nbackends = ["numpy"]\nbudget_s = 0.05\nwarm_cache = true\n'
                     '[kernels.cheat]\nparams = { rows = [2048], cols = [2048] }\n')
    out = tmp_path / "r.jsonl"
    ceilings = '{"cpu": {"copy_gbps": 40.0, "read_gbps": 40.0, "gemm_gflops": {}}}'
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
    assert case["status"] == "ok"  # it is accurate: only its timing lies
    assert "suspect" in case["flags"], case["gbps"]
