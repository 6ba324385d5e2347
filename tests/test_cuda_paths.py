"""The CUDA paths on a machine without a GPU: gpu.toml plans, every CUDA case is recorded with
the reason it cannot run here (never a crash, never silently missing), the ceiling lookup maps
`cuda` to `cuda:0`, the `cpu` ceilings are measured on the CPU even where JAX's default device is
another one (a GPU, with the CUDA plugin), and the CUDA timers' logic is covered in
test_gpu_timing.py with fakes."""

import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from kernbench.cli import main
from kernbench.discovery import discover
from kernbench.metrics import ceiling_for
from kernbench.results import read_run
from kernbench.suite import load_suite

from .conftest import ROOT


def test_gpu_suite_plans_every_kernel():
    kernels = discover([])
    suite = load_suite(ROOT / "suites" / "gpu.toml", kernels)
    assert {p.case.device for p in suite.cases} == {"cuda"}
    assert {p.case.kernel for p in suite.cases} == set(kernels)
    assert {"torch_eager", "torch_compile", "triton", "numba_cuda", "jax_jit", "cupy"} <= {
        p.case.backend for p in suite.cases}
    # the issue-4 training modes, on the GPU too, wherever a kernel has a gradient
    for name, kernel in kernels.items():
        modes = {p.case.mode for p in suite.cases if p.case.kernel == name}
        expected = {"forward", "backward", "forward_backward"} if kernel.spec.grad_inputs else {
            "forward"}
        assert modes == expected, name


def test_gpu_session_script_plans_every_stage(tmp_path):
    """benchmarks/gpu_session.sh, the one-call GPU check, planned here (DRY_RUN): every stage's
    patterns and filters must select cases of gpu.toml / gpu_smoke.toml, so a renamed shape
    fails here and not on a lent GPU's minutes. Stage 1 is the issue's bf16 figures: the five
    kernels' figure shapes on Triton and torch (17 cases)."""
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "OUT": str(tmp_path)}
    out = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_session.sh")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("== stage")]
    assert {line.split(",")[0] for line in lines} == {f"== stage {n}" for n in range(1, 7)}
    for line in lines:
        planned = int(line.rsplit("kernbench: ", 1)[1].split()[0])
        assert planned > 0, line
    assert lines[0].endswith("kernbench: 17 cases planned"), lines[0]
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


def test_cuda_cases_without_gpu_are_recorded(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this test is about machines without a GPU")
    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nbackends = ["numpy", "numba", "torch_eager", "jax_jit", "triton",'
                     ' "numba_cuda", "cupy"]\ndevices = ["cuda", "cuda:1"]\nbudget_s = 0.0\n'
                     'min_samples = 2\n[kernels.softmax]\nparams = { rows = [4], cols = [8] }\n')
    out = tmp_path / "r.jsonl"
    assert main(["run", str(suite), "-o", str(out), "--calibrate", "skip",
                 "--no-progress"]) == 0
    cases = read_run(out).cases
    assert len(cases) == 2 * 8  # numpy, numba, torch_eager (+manual), jax, triton, numba_cuda,
    # cupy
    for c in cases:
        assert c["status"] in ("unsupported", "skipped"), c
        assert c["reason"], c
    reasons = {c["backend"]: c["reason"] for c in cases if c["device"] == "cuda"}
    assert "CPU only" in reasons["numpy"] and "CPU only" in reasons["numba"]
    assert "no CUDA device" in reasons["torch_eager"]
    assert "no CUDA device" in reasons["numba_cuda"]
    assert "GPU" in reasons["jax_jit"] or "gpu" in reasons["jax_jit"]


def test_ceiling_lookup_for_cuda():
    ceilings = {"cuda:0": {"copy_gbps": 3000.0, "gemm_gflops": {"bfloat16": 790000.0}}}
    assert ceiling_for(ceilings, "cuda", "bfloat16") == (790000.0, 3000.0)
    assert ceiling_for(ceilings, "cuda:1", "bfloat16") == (None, None)


def test_float32_roof_on_a_gpu_is_the_better_of_fp32_and_3xtf32():
    """A float32-accurate GEMM may run as 3xTF32 on tensor cores (SDPA's float32 attention
    does): the float32 roof is a third of the TF32 rate where that beats plain FP32, so such a
    kernel is not flagged `suspect`; where TF32 is not measured (a CPU) nothing changes."""
    h100 = {"cuda:0": {"copy_gbps": 3000.0,
                       "gemm_gflops": {"float32": 51000.0, "tf32": 370000.0}}}
    gemm, _ = ceiling_for(h100, "cuda", "float32")
    assert gemm == pytest.approx(370000.0 / 3)
    slow_tf32 = {"cuda:0": {"copy_gbps": 3000.0,
                            "gemm_gflops": {"float32": 51000.0, "tf32": 120000.0}}}
    assert ceiling_for(slow_tf32, "cuda", "float32") == (51000.0, 3000.0)
    assert ceiling_for(h100, "cuda", "tf32") == (370000.0, 3000.0)
    cpu = {"cpu": {"copy_gbps": 60.0, "gemm_gflops": {"float32": 450.0}}}
    assert ceiling_for(cpu, "cpu", "float32") == (450.0, 60.0)

    from kernbench.metrics import derive

    spec = discover([])["matmul"].spec
    params = spec.resolve({"m": 4096, "n": 4096, "k": 4096})
    flops = spec.flops(params)
    record = {"params": params, "dtype": "float32", "device": "cuda", "mode": "forward",
              "time": {"median_s": flops / 90000e9, "iqr_s": 0.0}}  # 90 TFLOP/s
    derive(record, spec, h100)
    assert "suspect" not in record.get("flags", [])
    assert record["roofline_fraction"] == pytest.approx(90000.0 / (370000.0 / 3))


#: measure_cpu, small, in a process whose JAX has two host devices and the second as its default
#: device, standing in for the GPU a CUDA-plugin machine defaults to; every JAX result the timing
#: sees must be on jax.devices("cpu")[0]
_CPU_CEILING_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.modules["torch"] = None  # only the JAX part is under test (ImportError: skipped)
    import jax
    import kernbench.ceilings as c

    jax.config.update("jax_default_device", jax.devices("cpu")[1])
    c.COPY_BYTES, c.GEMM_N = 1 << 16, 32
    seen = []

    def best(fn, repeats=1):
        out = fn()
        if isinstance(out, jax.Array):
            seen.append(sorted(str(d) for d in out.devices()))
        return 1e-3

    c._best = best
    result = c.measure_cpu(1)
    print(json.dumps({"seen": seen, "cpu0": str(jax.devices("cpu")[0]),
                      "default": str(jax.devices("cpu")[1]),
                      "jax_gemm": sorted(k for k, v in result["method"]["gemm_gflops"].items()
                                         if "jax" in v)}))
""")


def test_cpu_ceilings_measure_jax_on_the_cpu_not_the_default_device():
    pytest.importorskip("jax")
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=(
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip())
    out = subprocess.run([sys.executable, "-c", _CPU_CEILING_SCRIPT], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["jax_gemm"] == ["bfloat16", "float32", "float64"]
    assert len(got["seen"]) == 4  # three GEMMs and the copy
    assert all(devs == [got["cpu0"]] for devs in got["seen"]), got


def test_ceilings_subprocess_does_not_preallocate_gpu_memory(monkeypatch):
    """measure_cuda runs after JAX has started in the ceilings process: JAX must not hold 75% of
    the GPU by then."""
    import kernbench.ceilings as c

    seen = {}

    def run(cmd, env, **kwargs):
        seen.update(env)
        return subprocess.CompletedProcess(cmd, 0, stdout='{"cpu": {}}\n', stderr="")

    monkeypatch.setattr(c.subprocess, "run", run)
    assert c.measure_in_subprocess(2, {"PATH": os.environ.get("PATH", "")}) == {"cpu": {}}
    assert seen["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def test_a_failed_gpu_case_gets_a_fresh_worker(monkeypatch):
    """After a `failed` case on a GPU the runner replaces the worker (a sticky CUDA error would
    fail every later case of the group); on a CPU the worker stays."""
    from kernbench import runner

    kernels = discover([])
    planned = [p for p in load_suite(ROOT / "suites" / "gpu.toml", kernels).cases
               if p.case.kernel == "softmax" and p.case.backend == "triton"
               and p.case.mode == "forward"][:3]
    started: list = []

    class FakeWorker:
        def __init__(self, env):
            started.append(self)

        def run(self, msg, timeout):
            status = "failed" if msg["case"]["params"]["rows"] == 32768 else "ok"
            return "ok", {"type": "case", **msg["case"],
                          "status": status, "reason": "RuntimeError: CUDA error: an illegal "
                          "memory access was encountered" if status == "failed" else None}

        def close(self):
            pass

        kill = close

    monkeypatch.setattr(runner, "WorkerProcess", FakeWorker)
    monkeypatch.setattr(runner, "family_of", lambda b: type(
        "F", (), {"name": "triton", "missing": lambda self: None,
                  "worker_env": lambda self, d: {}})())
    monkeypatch.setattr(runner, "memory_check", lambda p, s: None)
    monkeypatch.setattr(runner.metrics, "derive", lambda r, spec, ceilings: r)
    records: list = []
    rows = [p.case.param_dict["rows"] for p in planned]
    assert rows[:2] == [32768, 32768] and rows[2] != 32768, rows
    with runner.RunSettings(threads=1) as settings:
        runner.run_cases(planned, settings, {}, records.append)
    assert [r["status"] for r in records] == ["failed", "failed", "ok"]
    assert len(started) == 3  # the first, then one after each failure
    assert runner.poisons_worker(records[0])
    assert not runner.poisons_worker({**records[0], "device": "cpu"})
    assert not runner.poisons_worker(records[2])


def test_gpu_smoke_is_smoke_on_cuda():
    """gpu_smoke.toml (the first minutes of a lent GPU) runs exactly smoke.toml's kernels,
    shapes and modes, on CUDA and every GPU backend: the two files cannot drift apart."""
    kernels = discover([])

    def shapes(name):
        return {(p.case.kernel, p.case.params, p.case.mode, p.case.dtype)
                for p in load_suite(ROOT / "suites" / name, kernels).cases}

    gpu = load_suite(ROOT / "suites" / "gpu_smoke.toml", kernels).cases
    assert shapes("gpu_smoke.toml") == shapes("smoke.toml")
    assert {p.case.device for p in gpu} == {"cuda"}
    assert {p.case.backend.split(":")[0] for p in gpu} == {
        "torch_eager", "torch_compile", "triton", "numba_cuda", "jax_jit", "cupy"}


@pytest.mark.parametrize("device, expected", [("cuda", None), ("cuda:1", 1), ("cpu", None)])
def test_use_device_sets_the_index_torch_accepts(monkeypatch, device, expected):
    """torch.cuda.set_device refuses a torch.device without an index ("cuda"): use_device must
    leave plain "cuda" to the current device and pass cuda:N's index, in a form torch takes."""
    torch = pytest.importorskip("torch")
    from torch.cuda._utils import _get_device_index

    from kernbench.backends import FAMILIES

    seen = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: seen.append(_get_device_index(d)))
    for name in ("torch", "triton", "numba_cuda"):
        FAMILIES[name].use_device(device)
    assert seen == ([] if expected is None else [expected] * 3)


def test_every_torch_cuda_api_used_exists():
    """The GPU-only code never runs here, so a misspelt or removed torch.cuda API would first fail
    on a lent GPU: every `torch.cuda.<name>...` chain in src/ and kernels/ must resolve in this
    torch (the CPU build carries the whole torch.cuda module)."""
    import ast

    torch = pytest.importorskip("torch")
    missing = []
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "kernels").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            chain, inner = [], node
            while isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
                inner = inner.value
            chain.reverse()
            if not (isinstance(inner, ast.Name) and inner.id == "torch" and chain[:1] == ["cuda"]):
                continue
            obj = torch
            for name in chain:
                if not hasattr(obj, name):
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: torch."
                                   + ".".join(chain))
                    break
                obj = getattr(obj, name)
    assert not missing, missing


def fake_torch_event(log: list, clock: list):
    """A torch.cuda.Event stand-in: record() reads the fake device clock `clock[0]` (seconds)
    and logs "event"; elapsed_time is in milliseconds, as torch's."""

    class Event:
        def __init__(self, enable_timing=False):
            assert enable_timing

        def record(self):
            self.t = clock[0]
            log.append("event")

        def elapsed_time(self, end):
            return (end.t - self.t) * 1e3

    return Event


def test_torch_cuda_block_wiring(monkeypatch):
    """The torch adapter's CUDA block, with torch.cuda faked: per call the L2 flush, then the
    head-start spin, then start event, call, end event; device time is the events' sum."""
    from types import SimpleNamespace

    torch = pytest.importorskip("torch")
    from kernbench.backends import FAMILIES
    from kernbench.case import CaseSettings

    log, clock = [], [0.0]

    Event = fake_torch_event(log, clock)
    class Buffer:
        def zero_(self):
            log.append("flush")

    empty = torch.empty
    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: log.append("sync"))
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device=None: SimpleNamespace(L2_cache_size=50 << 20))
    monkeypatch.setattr(torch.cuda, "_sleep", lambda cycles: log.append(("spin", cycles)))
    monkeypatch.setattr(torch, "empty", lambda *a, device=None, **k: Buffer() if device == "cuda"
                        else empty(*a, **k))

    def call(x):
        log.append("call")
        clock[0] += 2e-3

    block = FAMILIES["torch"].make_block(call, [(0,)], "cuda", CaseSettings())
    assert abs(block(2) - 4e-3) < 1e-12
    steps = [e[0] if isinstance(e, tuple) else e for e in log]
    assert steps == ["sync"] + ["flush", "spin", "event", "call", "event"] * 2 + ["sync"]


def test_gpu_timer_says_what_timed_the_calls():
    """A suite's cuda_graph = true is honoured by the torch-launched families only; the record's
    `timer` says which clock produced a GPU figure."""
    from kernbench.backends import FAMILIES
    from kernbench.case import CaseSettings

    graph, plain = CaseSettings(cuda_graph=True), CaseSettings()
    for name in ("torch", "triton", "numba_cuda"):
        assert FAMILIES[name].gpu_timer(graph) == "cuda_graph"
        assert FAMILIES[name].gpu_timer(plain) == "cuda_events"
    assert FAMILIES["cupy"].gpu_timer(graph) == "cuda_events"
    assert FAMILIES["jax"].gpu_timer(graph) == "host_clock"


def test_torch_cuda_graph_block_wiring(monkeypatch):
    """`cuda_graph = true` on the torch adapter, with torch.cuda faked: the block's calls run once
    on a side stream (capture needs a warm-up off the capturing stream), are captured once per
    block length, and only the replay sits between the events, so neither warm-up nor capture is
    timed."""
    from types import SimpleNamespace

    torch = pytest.importorskip("torch")
    from kernbench.backends import FAMILIES
    from kernbench.case import CaseSettings

    log, clock, stream = [], [0.0], ["default"]

    Event = fake_torch_event(log, clock)
    class Graph:
        def __init__(self):
            self.calls = []
            log.append("new graph")

        def replay(self):
            log.append("replay")
            for f in self.calls:
                f()

    capturing = [None]

    class GraphContext:
        def __init__(self, graph):
            self.graph = graph

        def __enter__(self):
            capturing[0] = self.graph
            log.append("capture")

        def __exit__(self, *exc):
            capturing[0] = None

    class Stream:
        def __init__(self, device=None):
            self.name = "side"

        def wait_stream(self, other):
            log.append(f"{self.name} waits")

    class StreamContext:
        def __init__(self, s):
            self.s = s

        def __enter__(self):
            stream[0] = self.s.name

        def __exit__(self, *exc):
            stream[0] = "default"

    default = Stream()
    default.name = "default"
    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: log.append("sync"))
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph)
    monkeypatch.setattr(torch.cuda, "graph", GraphContext)
    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "stream", StreamContext)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: default)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device=None: SimpleNamespace(L2_cache_size=50 << 20))

    def run(x):
        log.append(("call", x, stream[0]))
        clock[0] += 2e-3

    def call(x):
        if capturing[0] is not None:  # captured, not run: the replay runs it
            capturing[0].calls.append(lambda: run(x))
            log.append(("recorded", x))
        else:
            run(x)

    block = FAMILIES["torch"].make_block(call, [(0,), (1,)], "cuda", CaseSettings(cuda_graph=True))
    assert abs(block(3) - 6e-3) < 1e-12  # three replayed calls; warm-up and capture untimed
    assert abs(block(3) - 6e-3) < 1e-12
    assert log.count("new graph") == 1 and log.count("capture") == 1
    warm = [e for e in log if isinstance(e, tuple) and e[0] == "call" and e[2] == "side"]
    assert [e[1] for e in warm] == [0, 1, 0]  # the warm-up ran on the side stream
    first_event = log.index("event")
    assert log.index("capture") < first_event
    assert log[first_event:first_event + 5] == ["event", "replay", ("call", 0, "default"),
                                                ("call", 1, "default"), ("call", 0, "default")]
    assert log[first_event + 5] == "event"


def test_cupy_block_wiring(monkeypatch):
    """The CuPy adapter's block, with a fake cupy module: per call the L2 flush (a buffer twice
    the L2, filled on the device), the head-start spin (gpu_timing's kernel, one thread,
    HEAD_START_CYCLES), then start event, call, end event; device time is the events' sum."""
    import types

    import numpy as np

    from kernbench.backends import FAMILIES
    from kernbench.case import CaseSettings
    from kernbench.gpu_timing import HEAD_START_CYCLES, SPIN_KERNEL_NAME, SPIN_KERNEL_SOURCE

    log, clock, made = [], [0.0], {}

    class Event:
        def record(self):
            self.t = clock[0]
            log.append("event")

    class Device:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def synchronize(self):
            log.append(("sync", self.index))

    class Buffer:
        def fill(self, value):
            assert value == 0
            log.append("flush")

    def empty(n, dtype):
        made["flush_elements"], made["flush_dtype"] = n, dtype
        return Buffer()

    class RawKernel:
        def __init__(self, code, name):
            made["kernel"] = (code, name)

        def __call__(self, grid, block, args):
            log.append(("spin", grid, block, args))

    cupy = types.ModuleType("cupy")
    cupy.int32 = np.int32
    cupy.empty = empty
    cupy.RawKernel = RawKernel
    cupy.cuda = types.SimpleNamespace(
        Event=Event, Device=Device,
        get_elapsed_time=lambda a, b: (b.t - a.t) * 1e3,
        runtime=types.SimpleNamespace(
            getDeviceProperties=lambda i: {"l2CacheSize": 50 << 20}))
    monkeypatch.setitem(sys.modules, "cupy", cupy)

    def call(x):
        log.append("call")
        clock[0] += 2e-3

    block = FAMILIES["cupy"].make_block(call, [(0,)], "cuda:1", CaseSettings())
    assert abs(block(2) - 4e-3) < 1e-12
    assert made["kernel"] == (SPIN_KERNEL_SOURCE, SPIN_KERNEL_NAME)
    assert made["flush_elements"] * 4 == 2 * (50 << 20) and made["flush_dtype"] is np.int32
    spins = [e for e in log if isinstance(e, tuple) and e[0] == "spin"]
    assert spins[0][1:3] == ((1,), (1,)) and int(spins[0][3][0]) == HEAD_START_CYCLES
    steps = [e[0] if isinstance(e, tuple) else e for e in log]
    assert steps == ["sync"] + ["flush", "spin", "event", "call", "event"] * 2 + ["sync"]
    assert {e[1] for e in log if isinstance(e, tuple) and e[0] == "sync"} == {1}


def test_jax_gpu_block_flushes_outside_the_timed_call(monkeypatch):
    """JAX's GPU block, run by the real JAX on the CPU device standing in for a GPU: the flush is
    a jitted zero-fill of twice 64 MiB placed on the case's device and finished before the clock
    starts; the clock is the host's, around a call that blocks on its result."""
    jax = pytest.importorskip("jax")
    from kernbench import gpu_timing
    from kernbench.backends import FAMILIES
    from kernbench.case import CaseSettings

    family = FAMILIES["jax"]
    cpu = jax.devices("cpu")[0]
    monkeypatch.setattr(type(family), "_device", lambda self, device: cpu)
    log, now = [], [0.0]
    monkeypatch.setattr(gpu_timing.time, "perf_counter", lambda: now[0])

    import jax.numpy as jnp

    real_jit = jax.jit
    flushes, queued = [], [0.0]  # device work dispatched but not yet waited for

    class Pending:
        """JAX dispatches asynchronously: a flush's 0.5 ms lands on the host clock when it is
        waited for, or else inside the next blocking call."""

        def __init__(self, out):
            self.out = out

        def block_until_ready(self):
            now[0] += queued[0]
            queued[0] = 0.0
            log.append("flush done")
            return self.out

    def spy_jit(fn, **kw):
        compiled = real_jit(fn, **kw)

        def run(*a):
            out = compiled(*a)
            flushes.append((out.shape, out.dtype, out.devices()))
            log.append("flush")
            queued[0] += 5e-4
            return Pending(out)
        return run

    monkeypatch.setattr(jax, "jit", spy_jit)

    def call(x):
        log.append("call")
        now[0] += queued[0] + 2e-3  # the call's result waits for everything queued before it
        queued[0] = 0.0
        return jnp.asarray(x)

    block = family.make_block(call, [(1.0,)], "cuda", CaseSettings())
    assert abs(block(3) - 6e-3) < 1e-12  # the three flushes' 1.5 ms are not counted
    assert log == ["flush", "flush done", "call"] * 3
    assert flushes[0][0] == (2 * (64 << 20) // 4,) and flushes[0][1] == jnp.int32
    assert flushes[0][2] == {cpu}


def test_gpu_calibration_arithmetic(monkeypatch):
    """`kernbench calibrate` on a GPU (measure_cuda), with the device faked by the CPU and the
    event timings faked: copy = 2 bytes / t (read + write), update the same, read = bytes / t,
    GEMM = 2 n^3 / t per dtype (float64 at n / 2), TF32 enabled for the tf32 GEMM only and
    restored after; the device's name, SM count, L2 and memory are recorded."""
    import contextlib
    from types import SimpleNamespace

    torch = pytest.importorskip("torch")
    from kernbench import ceilings

    monkeypatch.setattr(ceilings, "GPU_COPY_BYTES", 1 << 16)
    monkeypatch.setattr(ceilings, "GPU_GEMM_N", 16)
    real_device = torch.device
    monkeypatch.setattr(torch, "device", lambda kind, index=None: real_device("cpu"))
    monkeypatch.setattr(torch.cuda, "device", lambda dev: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda dev: SimpleNamespace(
        name="Fake H100", multi_processor_count=132, L2_cache_size=50 << 20,
        total_memory=80 << 30))
    # in measure_cuda's order: copy, update, read, GEMM bf16, f16, f32, tf32, f64
    times = [4e-3, 2e-3, 1e-3, 1e-3, 2e-3, 8e-3, 3e-3, 16e-3]
    queue, tf32_seen = list(times), []
    before = torch.backends.cuda.matmul.allow_tf32  # a module property: monkeypatch cannot undo it
    torch.backends.cuda.matmul.allow_tf32 = False

    def fake_best(fn, repeats=10):
        fn()
        tf32_seen.append(torch.backends.cuda.matmul.allow_tf32)
        return queue.pop(0)

    monkeypatch.setattr(ceilings, "_best_cuda", fake_best)
    try:
        got = ceilings.measure_cuda(0)
        restored = torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
    assert not queue
    nbytes, flops = 1 << 16, 2.0 * 16**3
    copy, update, read, bf16, f16, f32, tf32, f64 = times
    assert got["copy_gbps"] == pytest.approx(2 * nbytes / copy / 1e9)
    assert got["update_gbps"] == pytest.approx(2 * nbytes / update / 1e9)
    assert got["read_gbps"] == pytest.approx(nbytes / read / 1e9)
    assert got["gemm_gflops"] == pytest.approx({
        "bfloat16": flops / bf16 / 1e9, "float16": flops / f16 / 1e9,
        "float32": flops / f32 / 1e9, "tf32": flops / tf32 / 1e9,
        "float64": 2.0 * 8**3 / f64 / 1e9})
    assert tf32_seen == [False] * 6 + [True, False]
    assert restored is False
    assert (got["name"], got["sm_count"], got["l2_bytes"], got["memory_bytes"]) == (
        "Fake H100", 132, 50 << 20, 80 << 30)
    # the line `run` prints names the GPU's own copy and bf16 rate, not only the CPU's
    line = ceilings.describe({"cpu": {"copy_gbps": 40.0}, "cuda:0": got, "cached": None})
    assert (f"cuda:0 (Fake H100) copy {got['copy_gbps']:.0f} GB/s, "
            f"bf16 GEMM {got['gemm_gflops']['bfloat16'] / 1e3:.0f} TFLOP/s") in line


def test_triton_offset_dtype_widens_only_past_2_31_elements():
    """The matmul and pairwise-distance kernels index in int32 until an operand's last element
    lies 2**31 elements from its start (strides counted, so a transposed view counts as much as
    the tensor it views); an LM head's 32768 x 128256 logits need int64."""
    import triton.language as tl

    from kernbench.triton_offsets import offset_dtype

    def t(shape, stride):
        return SimpleNamespace(shape=shape, stride=lambda: stride)

    small = t((4096, 4096), (4096, 1))
    assert offset_dtype(small, small) == tl.int32
    assert offset_dtype(small, t((32768, 128256), (128256, 1))) == tl.int64
    edge = 2**31 - 1  # last element's offset 2**31 - 1: still int32; one more is not
    assert offset_dtype(t((edge + 1,), (1,))) == tl.int32
    assert offset_dtype(t((edge + 2,), (1,))) == tl.int64
    assert offset_dtype(t((256, 4096), (1, 2**23))) == tl.int64  # b.t() of a 2**23-wide b
