"""Every Triton kernel of the smoke suite, and every numba-cuda kernel of the simulated suite,
compiles for an H100 (sm_90) without a GPU (Triton's own pipeline; numba's NVVM, then Triton's
ptxas): the interpreter and the simulator prove arithmetic, this proves GPU code generation
(a global Python float read inside @triton.jit, for one, passes the interpreter and fails here;
the simulator runs any Python, typed or not)."""

import os
import subprocess
import sys
from pathlib import Path

from kernbench.discovery import discover

from .conftest import ROOT


def compile_suite(suite: str | Path, backend: str) -> list[str]:
    """gpu_compile's table rows for one backend's kernels in a suite (a name under suites/, or
    a path), asserting none failed."""
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


WIDE_ROWS = """
[suite]
backends = ["triton"]
dtypes = ["float32", "bfloat16"]
[kernels.softmax]
params = { rows = [2], cols = [20000] }
modes = ["forward", "backward"]
[kernels.layer_norm]
params = { rows = [3], hidden = [20000] }
modes = ["forward", "backward"]
[kernels.rms_norm]
params = { rows = [3], hidden = [20000] }
modes = ["forward", "backward"]
"""


def test_wide_row_triton_kernels_compile_for_sm90(tmp_path):
    """Rows wider than one register tile take other kernels (softmax's online pass, the norms'
    chunked ones), which no smoke shape launches: a shape of their own compiles them."""
    suite = tmp_path / "wide.toml"
    suite.write_text(WIDE_ROWS)
    names = {line.split()[1] for line in compile_suite(suite, "triton")}
    assert {"_softmax_online", "_softmax_backward_loop", "_layer_norm_chunked",
            "_layer_norm_bwd_chunk", "_rms_norm_chunked", "_rms_norm_bwd_chunk"} <= names, names


def test_numba_cuda_kernels_compile_for_sm90_without_float64_in_float32():
    # simulated.toml: every kernel in both dtypes; gpu.toml: the tile configurations and block
    # sizes that GPU-sized shapes select (each launch's registers must fit its block)
    rows = compile_suite("simulated.toml", "numba_cuda") + compile_suite("gpu.toml", "numba_cuda")
    compiled = {line.split("/")[0] for line in rows}
    assert kernels_with("numbacuda") <= compiled, kernels_with("numbacuda") - compiled
    # a float literal or a float64 helper silently promotes a float32 kernel to float64
    # (half rate or worse on a GPU, twice the registers): none may
    promoted = [line for line in rows if "/float32/" in line and int(line.split()[-1]) > 0]
    assert not promoted, promoted


def test_a_kernel_with_more_registers_than_its_block_can_hold_is_reported():
    from kernbench.gpu_compile import Compiled, launch_problem

    def kernel(regs, warps):
        return Compiled("k", "case", warps, None, 0, regs, 0, 0)

    assert launch_problem(kernel(128, 16)) is None  # 128 x 512 = 65536 exactly
    assert "launch would fail" in launch_problem(kernel(130, 16))  # rounds up to 136 a thread
    assert launch_problem(kernel(255, 8)) is None
    assert launch_problem(kernel(None, 32)) is None


def test_cupy_head_start_spin_compiles_for_sm90_and_keeps_its_loop():
    """CuPy's head start is a CUDA C kernel that CuPy compiles with NVRTC on first use, so a
    typo would first fail on a lent GPU. NVRTC (the wheel the numba-cuda extra installs) and
    Triton's ptxas build it here for sm_90; the PTX must still read the cycle counter inside a
    loop that ends on the `cycles` argument (an optimiser that dropped the loop, or a bound
    that ignored it, would leave no head start at all)."""
    import re

    from cuda.bindings import nvrtc

    from kernbench.gpu_compile import assemble
    from kernbench.gpu_timing import SPIN_KERNEL_NAME, SPIN_KERNEL_SOURCE

    def ok(result):
        err, *rest = result
        assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, err
        return rest[0] if rest else None

    prog = ok(nvrtc.nvrtcCreateProgram(SPIN_KERNEL_SOURCE.encode(), b"spin.cu", 0, [], []))
    err, = nvrtc.nvrtcCompileProgram(prog, 1, [b"--gpu-architecture=compute_90"])
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        size = ok(nvrtc.nvrtcGetProgramLogSize(prog))
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(prog, log)
        raise AssertionError(log.decode())
    ptx = b" " * ok(nvrtc.nvrtcGetPTXSize(prog))
    ok(nvrtc.nvrtcGetPTX(prog, ptx))
    ptx = ptx.decode().rstrip("\x00 ")
    assert f".entry {SPIN_KERNEL_NAME}(" in ptx
    body = ptx.split(f".entry {SPIN_KERNEL_NAME}(", 1)[1]
    loop = re.search(r"\$L__BB0_(\d+):(.*?)bra[.a-z]*\s+\$L__BB0_\1;", body, flags=re.S)
    assert loop and "%clock64" in loop.group(2), body
    cycles = re.search(rf"ld\.param\.[us]64\s+(%rd\d+), \[{SPIN_KERNEL_NAME}_param_0\]", body)
    assert cycles and re.search(rf"setp\.\w+\.s64\s+%p\d+, %rd\d+, {cycles.group(1)};",
                                loop.group(2)), body  # the loop runs until `cycles` have passed
    cubin, _ = assemble(ptx, 90)
    assert cubin
