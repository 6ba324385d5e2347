"""The CUDA paths on a machine without a GPU: gpu.toml plans, every CUDA case is recorded with
the reason it cannot run here (never a crash, never silently missing), the ceiling lookup maps
`cuda` to `cuda:0`, and the CUDA timers' logic is covered in test_gpu_timing.py with fakes."""

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
