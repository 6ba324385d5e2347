"""Every Triton kernel of the smoke suite compiles for an H100 (sm_90) through Triton's own
ptxas, without a GPU: the interpreter proves arithmetic, this proves GPU code generation
(a global Python float read inside @triton.jit, for one, passes the interpreter and fails here)."""

import os
import subprocess
import sys

from kernbench.discovery import discover

from .conftest import ROOT


def test_triton_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, "-m", "kernbench.gpu_compile",
                          str(ROOT / "suites" / "smoke.toml"), "--arch", "90"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    with_triton = {name for name, k in discover([]).items()
                   if any(i.family == "triton" for i in k.implementations)}
    compiled = {line.split("/")[0] for line in out.stdout.splitlines()[1:-1] if "/" in line}
    assert with_triton <= compiled, with_triton - compiled
    assert "0 failed" in out.stdout.splitlines()[-1]
