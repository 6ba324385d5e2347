"""Isolation, faults and resume: killed runs resume with every case exactly once, shards merge,
a worker past its memory limit records the case and the sweep goes on, and random suite files
get a sweep or a clean error, never a traceback."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernbench.cli import main
from kernbench.results import read_run

from .conftest import ROOT, write_kernel

SPEC = (ROOT / "kernels" / "softmax" / "spec.py").read_text()
GOOD = (ROOT / "kernels" / "softmax" / "softmax_numpy.py").read_text()
SLOW = (GOOD + "\nimport time\n_f = forward\n"
        "def forward(x):\n    time.sleep(0.05)\n    return _f(x)\n")
HEAD = ('[suite]\nname = "iso"\nbackends = ["numpy"]\nbudget_s = 0.0\nmin_samples = 2\n'
        'warmup_s = 0.0\nmin_block_s = 0.0001\ntimeout_s = 60\n')


def test_sigkill_then_resume_runs_every_case_once(tmp_path):
    write_kernel(tmp_path / "k", "slow", SPEC, {"numpy": SLOW})
    suite = tmp_path / "s.toml"
    suite.write_text(HEAD + "[kernels.slow]\nparams = { rows = [2, 3, 4, 5, 6, 7, 8, 9], "
                     "cols = [8] }\n")
    out = tmp_path / "r.jsonl"
    cmd = [sys.executable, "-m", "kernbench", "run", str(suite), "--kernels", str(tmp_path / "k"),
           "-o", str(out), "--calibrate", "skip", "--no-progress"]
    temp = tmp_path / "temp"  # the killed run's scratch folder stays here, not in /tmp
    temp.mkdir()
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TMPDIR": str(temp)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.exists() and len(out.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(out, "a") as f:  # as if killed mid-write
        f.write('{"type": "case", "id": "slow/num')
    assert main(["run", str(suite), "--kernels", str(tmp_path / "k"), "--resume", str(out),
                 "--calibrate", "skip", "--no-progress"]) == 0
    ids = [c["id"] for c in read_run(out).cases]
    assert len(ids) == 8 == len(set(ids))
    assert all(c["status"] == "ok" for c in read_run(out).cases)


def _workers_of(pid: int) -> list[int]:
    """Live worker processes started by run `pid` (they carry its pid in their environment)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
            state = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"KERNBENCH_PARENT_PID={pid}".encode() in environ and state != "Z":
            found.append(int(entry))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_run_leaves_no_worker_behind(tmp_path, sig):
    """Workers run in their own session, so nothing else reaps them: a run stopped by
    `timeout` (SIGTERM) kills its worker and reports what it finished (exit 130); a run killed
    outright takes its worker with it (PR_SET_PDEATHSIG). An orphan would go on running its
    case beside the next run's timings."""
    write_kernel(tmp_path / "k", "slow", SPEC, {"numpy": SLOW})
    suite = tmp_path / "s.toml"
    # a case that lasts (1000 samples of 50 ms): an orphan would outlive the checks below
    suite.write_text(HEAD.replace("budget_s = 0.0", "budget_s = 60.0")
                     .replace("min_samples = 2", "min_samples = 1000\nmax_samples = 1000")
                     + "[kernels.slow]\nparams = { rows = [2, 3], cols = [8] }\n")
    cmd = [sys.executable, "-m", "kernbench", "run", str(suite), "--kernels", str(tmp_path / "k"),
           "-o", str(tmp_path / "r.jsonl"), "--calibrate", "skip", "--no-progress"]
    temp = tmp_path / "temp"
    temp.mkdir()
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE,
                            env={**os.environ, "TMPDIR": str(temp)})
    deadline = time.monotonic() + 120
    while not _workers_of(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = _workers_of(proc.pid)
    assert workers, "the run started no worker"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGTERM else -signal.SIGKILL), err
    deadline = time.monotonic() + 10
    while _workers_of(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _workers_of(proc.pid)
    if sig == signal.SIGTERM:  # a stopped run still removes its scratch folder
        assert not any(p.name.startswith("kernbench-") for p in temp.iterdir())


def test_resume_refuses_another_suite(tmp_path, capsys):
    write_kernel(tmp_path / "k", "good", SPEC, {"numpy": GOOD})
    suite = tmp_path / "s.toml"
    suite.write_text(HEAD + "[kernels.good]\nparams = { rows = [2], cols = [8] }\n")
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps({"type": "run", "schema": 1, "suite": "other"}) + "\n")
    assert main(["run", str(suite), "--kernels", str(tmp_path / "k"), "--resume", str(out),
                 "--calibrate", "skip"]) == 2
    assert "suite 'other'" in capsys.readouterr().err


def test_shards_partition_and_merge(tmp_path, capsys):
    write_kernel(tmp_path / "k", "good", SPEC, {"numpy": GOOD})
    suite = tmp_path / "s.toml"
    suite.write_text(HEAD + "[kernels.good]\nparams = { rows = [2, 3, 4, 5, 6], cols = [8] }\n")
    base = ["run", str(suite), "--kernels", str(tmp_path / "k"), "--calibrate", "skip",
            "--no-progress", "--isolate", "none"]
    assert main([*base, "--dry-run"]) == 0
    planned = set(capsys.readouterr().out.split())
    outs = []
    for k in (1, 2, 3):
        out = tmp_path / f"shard{k}.jsonl"
        assert main([*base, "--shard", f"{k}/3", "-o", str(out)]) == 0
        outs.append(str(out))
    shards = [{c["id"] for c in read_run(o).cases} for o in outs]
    assert set().union(*shards) == planned and sum(map(len, shards)) == len(planned)
    merged = tmp_path / "merged.jsonl"
    assert main(["merge", *outs, "-o", str(merged)]) == 0
    run = read_run(merged)
    assert {c["id"] for c in run.cases} == planned
    assert len(run.header["merged_from"]) == 3
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"type": "run", "schema": 1, "suite": "x"}) + "\n")
    assert main(["merge", outs[0], str(other), "-o", str(tmp_path / "m2.jsonl")]) == 2


def test_worker_memory_limit_records_and_goes_on(tmp_path):
    hog = "import numpy as np\ndef forward(x):\n    return np.ones(8 << 30, dtype=np.uint8)\n"
    write_kernel(tmp_path / "k", "hog", SPEC, {"numpy": hog})
    write_kernel(tmp_path / "k", "good", SPEC, {"numpy": GOOD})
    suite = tmp_path / "s.toml"
    suite.write_text(HEAD + "[kernels.hog]\nparams = { rows = [2], cols = [8] }\n"
                     "[kernels.good]\nparams = { rows = [2], cols = [8] }\n")
    out = tmp_path / "r.jsonl"
    assert main(["run", str(suite), "--kernels", str(tmp_path / "k"), "-o", str(out),
                 "--calibrate", "skip", "--no-progress", "--memory-limit", "3"]) == 0
    status = {c["kernel"]: c for c in read_run(out).cases}
    assert status["hog"]["status"] in ("failed", "crashed")
    assert "memory" in status["hog"]["reason"].lower() or "MemoryError" in status["hog"]["reason"]
    assert status["good"]["status"] == "ok"


def test_case_too_big_for_memory_is_skipped(tmp_path):
    write_kernel(tmp_path / "k", "good", SPEC, {"numpy": GOOD})
    suite = tmp_path / "s.toml"
    suite.write_text(HEAD + "[kernels.good]\nparams = { rows = [2, 200000], cols = [100000] }\n")
    out = tmp_path / "r.jsonl"
    assert main(["run", str(suite), "--kernels", str(tmp_path / "k"), "-o", str(out),
                 "--calibrate", "skip", "--no-progress"]) == 0
    status = {c["params"]["rows"]: c for c in read_run(out).cases}
    assert status[200000]["status"] == "skipped" and "GiB" in status[200000]["reason"]
    assert status[2]["status"] == "ok"


# -- fuzz: random suite files ----------------------------------------------------------------
def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


scalars = st.one_of(st.booleans(), st.integers(-5, 300), st.floats(-1, 10, allow_nan=False),
                    st.sampled_from(["numpy", "float32", "cpu", "bfloat16", "tpu", "", "forward",
                                     "softmax", "x"]))
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.sampled_from(["rows", "cols", "m", "n", "k", "zz"]),
                                   st.one_of(scalars, st.lists(scalars, max_size=3)),
                                   max_size=3))
keys = st.sampled_from(["name", "backends", "dtypes", "devices", "modes", "budget_s",
                        "timeout_s", "min_samples", "params", "cases", "threads", "warm_cache",
                        "bogus"])
tables = st.dictionaries(keys, values, max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(suite=tables, kernels=st.dictionaries(st.sampled_from(["softmax", "matmul", "nope"]),
                                             tables, max_size=2),
       garbage=st.sampled_from(["", "", "", "[[", "x = = 1", "\x00"]))
def test_random_suite_files_sweep_or_clean_error(tmp_path, capsys, suite, kernels, garbage):
    text = "[suite]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in suite.items())
    for name, conf in kernels.items():
        text += f"[kernels.{name}]\n" + "".join(f"{k} = {toml_value(v)}\n"
                                                for k, v in conf.items())
    path = tmp_path / "fuzz.toml"
    path.write_text(text + garbage)
    code = main(["run", str(path), "--dry-run", "--calibrate", "skip"])
    captured = capsys.readouterr()
    assert code in (0, 2)
    assert "Traceback" not in captured.err
    if code == 2:
        assert len(captured.err.strip().splitlines()) == 1
        assert str(path) in captured.err or "fuzz.toml" in captured.err


def test_shard_of_is_stable_across_processes():
    """Shards are cut on many machines: a case's shard is a function of its id alone (sha256),
    never of the process (Python's str hash is salted per process)."""
    import hashlib

    from kernbench.runner import shard_of

    case_id = "softmax/numpy/cpu/float32/forward/rows=2,cols=8"
    digest = hashlib.sha256(case_id.encode()).digest()
    assert shard_of(case_id, 3) == int.from_bytes(digest[:8], "little") % 3
    code = ("from kernbench.runner import shard_of; "
            f"print(shard_of({case_id!r}, 7))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
            for seed in ("1", "2", "3")}
    assert outs == {f"{shard_of(case_id, 7)}\n"}


def test_worker_env_fixes_every_pool_and_the_allocator():
    from kernbench.runner import RunSettings

    with RunSettings(threads=3) as three, RunSettings(threads=3) as other, \
            RunSettings(threads=3, allocator="") as plain, RunSettings(threads=1) as one:
        env = three.worker_env({})
        for var in ("KERNBENCH_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
            assert env[var] == "3", var
        assert env["GLIBC_TUNABLES"] == RunSettings.allocator
        assert "glibc.malloc.hugetlb=1" in env["GLIBC_TUNABLES"]
        assert "GLIBC_TUNABLES" not in plain.worker_env({})
        assert "--xla_cpu_multi_thread_eigen=false" in one.worker_env({})["XLA_FLAGS"]
        assert env["TORCHINDUCTOR_CACHE_DIR"] != other.worker_env({})[
            "TORCHINDUCTOR_CACHE_DIR"]  # each run its own compiler caches
        scratch = three.scratch
        assert os.path.isdir(os.path.join(scratch, "tmp"))
    assert not os.path.exists(scratch)  # closed: the caches go with the run


def test_runs_remove_their_scratch_folder(tmp_path):
    """Each run's compiler caches live in a private folder under the temporary directory
    (~200 MB for cpu.toml). A fresh run and a resumed one remove theirs (as do ab, profile and
    calibrate, through the same context manager):
    kept, they filled this project's CI disk."""
    write_kernel(tmp_path / "k", "slow", SPEC, {"numpy": GOOD})
    suite = tmp_path / "s.toml"
    suite.write_text(HEAD + "[kernels.slow]\ndtypes = [\"float32\", \"float64\"]\n"
                     "params = { rows = [2, 3], cols = [8] }\n")
    out = tmp_path / "r.jsonl"
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    base = [sys.executable, "-m", "kernbench", "run", str(suite), "--kernels",
            str(tmp_path / "k"), "--calibrate", "skip", "--no-progress"]
    subprocess.run(base + ["-o", str(out), "--kernel", "slow", "--dtype", "float32"], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    subprocess.run(base + ["--resume", str(out)], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    assert len(read_run(out).cases) == len({c["id"] for c in read_run(out).cases}) == 4
    assert [p.name for p in temp.iterdir() if p.name.startswith("kernbench-")] == []


def test_resume_derives_with_the_first_calls_ceilings(tmp_path):
    """A resumed run appends to a file whose header holds the ceilings the first call measured;
    the appended cases must be judged against those (the resuming call measures none, and a
    file mixing two machines' ceilings would rank its cases unfairly)."""
    write_kernel(tmp_path / "k", "sm", SPEC, {"numpy": GOOD})
    suite = tmp_path / "s.toml"
    suite.write_text(HEAD + "[kernels.sm]\nparams = { rows = [2, 3], cols = [8] }\n")
    out = tmp_path / "r.jsonl"
    base = ["--kernels", str(tmp_path / "k"), "--calibrate", "skip", "--no-progress"]
    assert main(["run", str(suite), "-o", str(out), *base]) == 0
    header, first, _ = out.read_text().splitlines()
    header = json.loads(header)
    header["ceilings"] = {"cpu": {"copy_gbps": 0.5, "gemm_gflops": {"float32": 3.0}}}
    out.write_text(json.dumps(header) + "\n" + first + "\n")  # as if killed after one case
    assert main(["run", str(suite), "--resume", str(out), *base]) == 0
    cases = read_run(out).cases
    assert len(cases) == 2 and "roofline_fraction" not in cases[0]
    added = cases[1]
    bound = min(3.0, 0.5 * added["intensity"])
    assert added["roofline_gflops"] == pytest.approx(bound)
    assert added["roofline_fraction"] == pytest.approx(added["gflops"] / bound)
