"""Every Triton kernel of the smoke suite, and every numba-cuda kernel of the simulated suite,
compiles for an H100 (sm_90) without a GPU (Triton's own pipeline; numba's NVVM, then Triton's
ptxas): the interpreter and the simulator prove arithmetic, this proves GPU code generation
(a global Python float read inside @triton.jit, for one, passes the interpreter and fails here;
the simulator runs any Python, typed or not)."""

import os
import subprocess
import sys

from kernbench.discovery import discover

from .conftest import ROOT


def compile_suite(suite: str, backend: str) -> list[str]:
    """gpu_compile's table rows for one backend's kernels in a suite (asserting none failed)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TRITON_INTERPRET", "NUMBA_ENABLE_CUDASIM")}
    out = subprocess.run([sys.executable, "-m", "kernbench.gpu_compile",
                          str(ROOT / "suites" / suite), "--arch", "90", "--backend", backend],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 failed" in out.stdout.splitlines()[-1]
    return [line for line in out.stdout.splitlines()[1:-1] if "/" in line]


def kernels_with(family: str) -> set[str]:
    return {name for name, k in discover([]).items()
            if any(i.family == family for i in k.implementations)}


def test_triton_kernels_compile_for_sm90():
    rows = compile_suite("smoke.toml", "triton")
    compiled = {line.split("/")[0] for line in rows}
    assert kernels_with("triton") <= compiled, kernels_with("triton") - compiled


def test_numba_cuda_kernels_compile_for_sm90_without_float64_in_float32():
    rows = compile_suite("simulated.toml", "numba_cuda")
    compiled = {line.split("/")[0] for line in rows}
    assert kernels_with("numbacuda") <= compiled, kernels_with("numbacuda") - compiled
    # a float literal or a float64 helper silently promotes a float32 kernel to float64
    # (half rate or worse on a GPU, twice the registers): none may
    promoted = [line for line in rows if "/float32/" in line and int(line.split()[-1]) > 0]
    assert not promoted, promoted
