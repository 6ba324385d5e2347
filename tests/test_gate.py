"""`kernbench gate`, `baseline save`, `export` and `ab`: exit codes, the lines naming a failing
case, the markdown summary, baseline storage by fingerprint, pytest-benchmark's JSON format,
suite thresholds, and two tiny real A/B runs (NumPy only) with an injected crash and an injected
accuracy loss."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kernbench.cli import main
from kernbench.compare import GatePolicy
from kernbench.errors import EXIT_FAILURE, EXIT_NOT_COMPARABLE, EXIT_OK, EXIT_USAGE, UsageError
from kernbench.gate import GateOptions, baseline_path, markdown, run_gate
from kernbench.pytest_bench import from_pytest_benchmark, to_pytest_benchmark
from kernbench.results import RunWriter, read_run
from kernbench.suite import build_suite

from .conftest import case_record, write_kernel

SLOW_ID = "softmax/numpy/cpu/float32/forward/rows=64,cols=128"
IDS = [SLOW_ID, "matmul/numpy/cpu/float32/forward/m=64,n=64,k=64",
       "matmul/torch_eager/cpu/float32/forward/m=64,n=64,k=64"]


def write_run(path: Path, factor: dict[str, float] | None = None, fingerprint: str = "fp1",
              seed: int = 0, status: dict[str, tuple[str, str]] | None = None,
              suite: str = "smoke", settings: dict | None = None) -> Path:
    rng = np.random.default_rng(seed)
    header = {"type": "run", "schema": 1, "run_id": f"r{seed}", "suite": suite,
              "fingerprint": fingerprint,
              "settings": {"threads": 2, "allocator": "a", **(settings or {})},
              "machine": {"cpu": "cpu", "cores": 2}, "software": {"numpy": "2"},
              "started": "2026-01-01T00:00:00", "git": {"commit": "abc", "dirty": False}}
    with RunWriter(path, header) as w:
        for cid in IDS:
            st, reason = (status or {}).get(cid, ("ok", None))
            samples = None
            if st == "ok":
                scale = 1e-3 * (factor or {}).get(cid, 1.0)
                samples = scale * np.exp(rng.normal(0, 0.02, 40))
            w.write(case_record(cid, samples, st, per_sample_calls=5, reason=reason))
    return path


# -- exit codes and lines ------------------------------------------------------------------------
def test_gate_passes_on_aa(tmp_path, capsys):
    b = write_run(tmp_path / "b.jsonl", seed=1)
    c = write_run(tmp_path / "c.jsonl", seed=2)
    assert main(["gate", "--baseline", str(b), "--current", str(c)]) == EXIT_OK
    assert "kernbench gate: PASS" in capsys.readouterr().out


def test_gate_fails_on_a_slowdown_naming_the_case(tmp_path, capsys):
    b = write_run(tmp_path / "b.jsonl", seed=1)
    c = write_run(tmp_path / "c.jsonl", {SLOW_ID: 1.25}, seed=2)
    assert main(["gate", "--baseline", str(b), "--current", str(c)]) == EXIT_FAILURE
    out = capsys.readouterr().out
    assert f"REGRESSION {SLOW_ID}: 1.2" in out and "kernbench gate: FAIL" in out


def test_gate_fails_on_a_crash_naming_the_case(tmp_path, capsys):
    b = write_run(tmp_path / "b.jsonl", seed=1)
    c = write_run(tmp_path / "c.jsonl", seed=2,
                  status={SLOW_ID: ("crashed", "worker killed by signal SIGSEGV")})
    assert main(["gate", "--baseline", str(b), "--current", str(c)]) == EXIT_FAILURE
    assert (f"FAILED {SLOW_ID}: was ok, now crashed: worker killed by signal SIGSEGV"
            in capsys.readouterr().out)


def test_threshold_option_overrides(tmp_path):
    b = write_run(tmp_path / "b.jsonl", seed=1)
    c = write_run(tmp_path / "c.jsonl", {SLOW_ID: 1.25}, seed=2)
    args = ["gate", "--baseline", str(b), "--current", str(c)]
    assert main([*args, "--threshold", "0.5"]) == EXIT_OK
    assert main([*args, "--kernel-threshold", "softmax=0.5"]) == EXIT_OK
    assert main([*args, "--kernel-threshold", "softmax"]) == EXIT_USAGE
    assert main([*args, "--alpha", "0"]) == EXIT_USAGE


def test_foreign_fingerprint_exits_3_unless_allowed(tmp_path, capsys):
    b = write_run(tmp_path / "b.jsonl", seed=1)
    c = write_run(tmp_path / "c.jsonl", {SLOW_ID: 1.25}, fingerprint="fp2", seed=2)
    args = ["gate", "--baseline", str(b), "--current", str(c)]
    assert main(args) == EXIT_NOT_COMPARABLE
    assert "fingerprints differ" in capsys.readouterr().out
    assert main([*args, "--allow-foreign"]) == EXIT_FAILURE


@pytest.mark.parametrize("setting", [{"threads": 1}, {"allocator": ""}])
def test_other_threads_or_allocator_exit_3_unless_allowed(tmp_path, capsys, setting):
    """Same machine, but a different thread count or allocator: timings are not comparable."""
    b = write_run(tmp_path / "b.jsonl", seed=1)
    c = write_run(tmp_path / "c.jsonl", {SLOW_ID: 1.25}, seed=2, settings=setting)
    args = ["gate", "--baseline", str(b), "--current", str(c)]
    assert main(args) == EXIT_NOT_COMPARABLE
    (key,) = setting
    assert f"settings.{key} differ" in capsys.readouterr().out
    assert main([*args, "--allow-foreign"]) == EXIT_FAILURE


def test_usage_errors_exit_2(tmp_path, capsys):
    c = write_run(tmp_path / "c.jsonl")
    assert main(["gate", "--baseline", str(tmp_path / "nope.jsonl"), "--current",
                 str(c)]) == EXIT_USAGE
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert main(["gate", "--baseline", str(bad), "--current", str(c)]) == EXIT_USAGE
    # no baseline stored for this machine
    assert main(["gate", "--current", str(c), "--baseline", str(tmp_path)]) == EXIT_USAGE
    assert "kernbench baseline save" in capsys.readouterr().err


def test_no_case_in_common_is_not_comparable(tmp_path):
    b = write_run(tmp_path / "b.jsonl")
    c = tmp_path / "c.jsonl"
    with RunWriter(c, read_run(b).header) as w:
        w.write({"type": "case", "id": "other/numpy/cpu/float32/forward/n=1", "kernel": "other",
                 "backend": "numpy", "status": "ok"})
    assert run_gate(GateOptions(current=str(c), baseline=str(b))) == EXIT_NOT_COMPARABLE


# -- markdown --------------------------------------------------------------------------------------
def test_markdown_summary_and_step_summary(tmp_path, monkeypatch):
    b = write_run(tmp_path / "b.jsonl", seed=1)
    c = write_run(tmp_path / "c.jsonl", {SLOW_ID: 1.4}, seed=2,
                  status={IDS[1]: ("failed", "inaccurate: a|b <script>")})
    summary = tmp_path / "step.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    md_file = tmp_path / "gate.md"
    code = main(["gate", "--baseline", str(b), "--current", str(c), "--markdown", str(md_file),
                 "--step-summary"])
    assert code == EXIT_FAILURE
    md = md_file.read_text()
    assert md.startswith("## ❌ kernbench gate: FAIL")
    assert "### Needs attention" in md
    assert f"| **regression** | `{SLOW_ID}` |" in md
    assert "a\\|b &lt;script&gt;" in md and "<script>" not in md  # a table cell stays one cell
    assert "Exit codes: 0 pass" in md
    assert summary.read_text() == "earlier step\n" + md + "\n"


# -- baselines -----------------------------------------------------------------------------------
def test_baseline_save_and_lookup_by_fingerprint(tmp_path, capsys):
    run = write_run(tmp_path / "run.jsonl", seed=1)
    root = tmp_path / "baselines"
    assert main(["baseline", "save", str(run), "--root", str(root)]) == EXIT_OK
    stored = root / "fp1" / "smoke.jsonl"
    assert stored.is_file() and str(stored) in capsys.readouterr().out
    machine = json.loads((root / "fp1" / "machine.json").read_text())
    assert machine["fingerprint"] == "fp1" and machine["cpu"] == "cpu"
    cur = write_run(tmp_path / "cur.jsonl", seed=2)
    assert baseline_path(read_run(cur), None, root) == stored
    assert baseline_path(read_run(cur), str(root), root) == stored
    assert run_gate(GateOptions(current=str(cur), root=str(root))) == EXIT_OK
    foreign = write_run(tmp_path / "foreign.jsonl", fingerprint="fp9")
    with pytest.raises(UsageError, match="exist for other machines: fp1/smoke.jsonl"):
        baseline_path(read_run(foreign), None, root)


def test_baseline_save_refuses_a_run_without_ok_cases(tmp_path):
    run = write_run(tmp_path / "run.jsonl", status={i: ("failed", "x") for i in IDS})
    assert main(["baseline", "save", str(run), "--root", str(tmp_path)]) == EXIT_USAGE


# -- pytest-benchmark format --------------------------------------------------------------------
def test_export_matches_pytest_benchmark_stats(tmp_path):
    from pytest_benchmark.stats import Stats  # the reference implementation, independent

    run = write_run(tmp_path / "run.jsonl", seed=3, status={IDS[2]: ("failed", "x")})
    out = tmp_path / "pb.json"
    assert main(["export", str(run), "-o", str(out)]) == EXIT_OK
    doc = json.loads(out.read_text())
    assert set(doc) >= {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    assert [b["name"] for b in doc["benchmarks"]] == IDS[:2]  # the failed case is left out
    bench = doc["benchmarks"][0]
    assert bench["fullname"] == f"suites/test_suites.py::test_case[{SLOW_ID}]"
    assert bench["group"] == "softmax" and bench["stats"]["iterations"] == 5
    ref = Stats()
    for x in bench["stats"]["data"]:
        ref.update(x)
    for key, value in ref.as_dict().items():
        if isinstance(value, str):  # "outliers": "<stddev>;<iqr>"
            assert bench["stats"][key] == value, key
        else:
            assert bench["stats"][key] == pytest.approx(value, rel=1e-12), key


def test_pytest_benchmark_files_round_trip_into_the_gate(tmp_path):
    b = write_run(tmp_path / "b.jsonl", seed=1)
    c = write_run(tmp_path / "c.jsonl", {SLOW_ID: 1.3}, seed=2)
    jb, jc = tmp_path / "b.json", tmp_path / "c.json"
    for src, dst in ((b, jb), (c, jc)):
        dst.write_text(json.dumps(to_pytest_benchmark(read_run(src))))
    back = from_pytest_benchmark(jb)
    orig = {x["id"]: x for x in read_run(b).cases}
    assert {x["id"] for x in back.cases} == set(IDS)
    assert back.cases[0]["time"]["samples_s"] == orig[back.cases[0]["id"]]["time"]["samples_s"]
    assert run_gate(GateOptions(current=str(jc), baseline=str(jb))) == EXIT_FAILURE


def test_pytest_benchmark_import_rejects_other_json(tmp_path):
    f = tmp_path / "x.json"
    f.write_text('{"hello": 1}')
    with pytest.raises(UsageError, match="not a pytest-benchmark JSON file"):
        from_pytest_benchmark(f)


def test_suites_folder_is_not_collected_by_make_test():
    import tomllib

    root = Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((root / "pyproject.toml").read_text())
    assert cfg["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
    assert (root / "suites" / "test_suites.py").is_file()


# -- suite thresholds ------------------------------------------------------------------------------
def test_suite_gate_threshold_keys(kernels):
    data = {"suite": {"gate_threshold": 0.2, "backends": ["numpy"]},
            "kernels": {"softmax": {"gate_threshold": 0.35}, "matmul": {}}}
    suite = build_suite(data, kernels, "s.toml")
    assert suite.gate == {"threshold": 0.2, "kernels": {"softmax": 0.35}}
    assert GatePolicy().threshold_for("softmax", {"gate": suite.gate}) == 0.35
    assert GatePolicy().threshold_for("matmul", {"gate": suite.gate}) == 0.2
    with pytest.raises(UsageError, match="gate_threshold"):
        build_suite({"suite": {"gate_threshold": "10%"}, "kernels": {"softmax": {}}}, kernels,
                    "s.toml")


# -- real A/B runs (NumPy only, tiny) -------------------------------------------------------------
SPEC = '''
import numpy as np
from kernbench import KernelSpec


class ScaleSpec(KernelSpec):
    defaults = {"n": 4096}
    inputs = ("x",)

    def make_inputs(self, params, rng):
        return {"x": rng.standard_normal(params["n"])}

    def reference(self, inputs, params):
        return (2.0 * inputs["x"],)

    def flops(self, params):
        return float(params["n"])

    def bytes(self, params, itemsize):
        return 2.0 * params["n"] * itemsize


SPEC = ScaleSpec()
'''
GOOD = "def forward(x):\n    return 2.0 * x\n"
HEADS = {
    "same": GOOD,
    "crash": "def forward(x):\n    raise RuntimeError('injected crash')\n",
    "inaccurate": "def forward(x):\n    return 2.0 * x * (1 + 1e-3)\n",
}
SUITE = """[suite]
name = "tiny"
backends = ["numpy"]
budget_s = 0.02
min_samples = 5
max_samples = 40
min_block_s = 0.0005
warmup_s = 0.0
memory = false
[kernels.scale]
cases = [ { n = 4096 } ]
"""


@pytest.mark.parametrize("head,code,line", [
    ("same", EXIT_OK, "mode paired"),
    ("crash", EXIT_FAILURE, "FAILED scale/numpy/cpu/float32/forward/n=4096: was ok, now failed: "
                            "RuntimeError: injected crash"),
    ("inaccurate", EXIT_FAILURE, "FAILED scale/numpy/cpu/float32/forward/n=4096: was ok, now "
                                 "failed: inaccurate"),
])
def test_ab_run_end_to_end(tmp_path, capsys, head, code, line):
    from kernbench.ab import ABOptions, ab_between

    base_root, head_root = tmp_path / "base", tmp_path / "head"
    write_kernel(base_root, "scale", SPEC, {"numpy": GOOD})
    write_kernel(head_root, "scale", SPEC, {"numpy": HEADS[head]})
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    opts = ABOptions(suite=str(suite), base_kernels=str(base_root), output=str(tmp_path / "ab"),
                     threads=1, progress=False)
    base, cur = ab_between(opts, [base_root], [head_root], "base")
    hb, hc = read_run(base).header, read_run(cur).header
    assert hb["ab"]["id"] == hc["ab"]["id"] and hb["ab"]["side"] == "base"
    if head == "same":
        rec = read_run(cur).cases[0]
        assert rec["time"]["pair"]["side"] == "head" and rec["time"]["n_samples"] >= 12
    assert run_gate(GateOptions(current=str(cur), baseline=str(base))) == code
    assert line in capsys.readouterr().out


def test_base_kernels_from_a_git_revision(tmp_path):
    from kernbench.ab import extract_base

    repo = tmp_path / "repo"
    write_kernel(repo / "kernels", "scale", SPEC, {"numpy": GOOD})
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false"]
    for cmd in (["init", "-q"], ["add", "kernels"], ["commit", "-q", "-m", "base"]):
        subprocess.run([*git, *cmd], cwd=repo, check=True, capture_output=True)
    (repo / "kernels" / "scale" / "scale_numpy.py").write_text(HEADS["crash"])  # head edits
    folder = extract_base("HEAD", tmp_path / "out", repo=repo)
    assert (folder / "scale" / "scale_numpy.py").read_text() == GOOD
    with pytest.raises(UsageError, match="git archive failed"):
        extract_base("no-such-rev", tmp_path / "out2", repo=repo)


def test_cli_ab_needs_exactly_one_base(tmp_path):
    assert main(["ab", "suites/smoke.toml"]) == EXIT_USAGE
    assert main(["ab", "suites/smoke.toml", "--base", "HEAD", "--base-kernels", "x"]) == \
        EXIT_USAGE


def test_markdown_for_a_passing_run_says_so(tmp_path):
    from kernbench.compare import compare

    b = write_run(tmp_path / "b.jsonl", seed=1)
    md = markdown(compare(read_run(b), read_run(b)))
    assert md.startswith("## ✅ kernbench gate: PASS") and "No regression" in md
    assert "| **same** |" in md  # the unchanged cases sit in the collapsed details


# -- the interleaving loop, with a fake clock ------------------------------------------------------
class FakeMachine:
    """Blocks whose per-call time is `base * factor * noise`; the clock advances by what they
    take, so the loop's budget logic runs without any real timing."""

    def __init__(self, sigma: float, seed: int = 0):
        self.now = 0.0
        self.rng = np.random.default_rng(seed)
        self.sigma = sigma

    def clock(self) -> float:
        return self.now

    def block(self, per_call: float):
        def run(n: int) -> float:
            t = n * per_call * float(np.exp(self.rng.normal(0, self.sigma)))
            self.now += t
            return t
        return run


def _interleave(sigma: float):
    from kernbench.ab_worker import interleave
    from kernbench.case import CaseSettings

    m = FakeMachine(sigma)
    settings = CaseSettings(budget_s=0.1, min_samples=5, max_samples=10_000, min_block_s=1e-3,
                            warmup_s=0.0)
    return (*interleave(m.block(1e-4), m.block(1.25e-4), settings, copies=4, clock=m.clock),
            m.now)


def test_interleave_stops_early_on_a_quiet_machine_and_extends_on_a_noisy_one():
    from kernbench.ab_worker import MAX_EXTEND, MIN_PAIRS, ratio_se

    a, b, n, spent = _interleave(0.0005)
    assert n >= 10 and MIN_PAIRS <= len(a) < 100 and spent < 0.2  # settled before the budget
    assert np.median(np.array(b) / np.array(a)) == pytest.approx(1.25, rel=0.01)
    a2, b2, _, spent2 = _interleave(0.3)
    assert spent2 > 2 * 0.1  # went past the plain budget (two sides) to pin the ratio down
    assert ratio_se(a2, b2) < 0.02 or spent2 >= 2 * 0.1 * MAX_EXTEND
    assert spent2 < 2 * 0.1 * MAX_EXTEND * 1.2  # and not for ever


def test_interleave_alternates_pairs_and_warms_each_block():
    """Timed blocks come A B, B A, A B, ... and each is preceded by an untimed pass of the same
    side over min(copies, n // 4) calls, so neither side always runs first or from a cold cache."""
    from kernbench.ab_worker import interleave
    from kernbench.case import CaseSettings

    log: list[tuple[str, int]] = []
    now = [0.0]

    def block(side, per_call):
        def run(n):
            log.append((side, n))
            now[0] += per_call * n
            return per_call * n
        return run

    settings = CaseSettings(budget_s=0.01, min_samples=6, max_samples=6, min_block_s=1e-3,
                            warmup_s=0.0)
    a, b, n = interleave(block("a", 1e-4), block("b", 1e-4), settings, copies=3,
                         clock=lambda: now[0])
    pre = min(3, n // 4)
    assert pre == 3 and len(a) == len(b) >= 6
    timed = log[-4 * len(a):]  # after warm-up and calibration: (pre-pass, timed block) pairs
    sides = [side for side, calls in timed if calls == n]
    expected = [s for i in range(len(a)) for s in (("a", "b") if i % 2 == 0 else ("b", "a"))]
    assert sides == expected
    assert all(timed[i] == (timed[i + 1][0], pre) and timed[i + 1][1] == n
               for i in range(0, len(timed), 2))
