"""Compile every Triton kernel for a real GPU target, on a machine without a GPU.

The CPU interpreter proves a kernel's arithmetic; it says nothing about whether the kernel
compiles for a GPU (type errors in lowering, shared memory over the limit, register spills).
Triton's wheel carries ptxas, so the whole pipeline (TTIR -> TTGIR -> LLIR -> PTX -> cubin) can
run here: a stand-in driver reports an sm_90 (H100) target, every launch becomes a compile-only
`warmup` (no kernel runs, outputs are garbage and ignored), and an autotuned kernel compiles
every one of its configs. Each launcher is called with the smoke suite's inputs (and its
backward, where it has one), so exactly the specialisations the benchmark uses are compiled.

    python -m kernbench.gpu_compile [SUITE] [--arch 90] [--kernel NAME]

Runs in its own process: TRITON_INTERPRET must be unset before triton is imported.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Compiled:
    kernel: str  # the @triton.jit function
    case: str
    num_warps: int
    num_stages: int
    shared_bytes: int
    registers: int | None
    stack_bytes: int | None  # local memory per thread: register spills (0 is what we want)


@contextlib.contextmanager
def compile_only(arch: int = 90):
    """Within this block, Triton launches compile for `sm_<arch>` and do not run."""
    import torch
    from triton.backends.compiler import GPUTarget
    from triton.runtime import driver
    from triton.runtime.autotuner import Autotuner
    from triton.runtime.jit import JITFunction

    class CompileOnlyDriver:
        target = GPUTarget("cuda", arch, 32)

        def get_current_device(self):
            return 0

        def get_current_stream(self, device=None):
            return 0

        def get_current_target(self):
            return self.target

        def get_active_torch_device(self):
            return torch.device("cpu")

        def get_benchmarker(self):
            raise RuntimeError("compile-only mode: nothing can be timed")

    compiled: list = []
    original_run, original_autotune = JITFunction.run, Autotuner.run

    def run(self, *args, grid, warmup, **kwargs):
        kernel = original_run(self, *args, grid=grid, warmup=True, **kwargs)
        compiled.append((self.fn.__name__, kernel))
        return kernel

    def autotune(self, *args, **kwargs):
        for config in self.configs:  # compile every config; none can be timed here
            self.fn.run(*args, **{**kwargs, **config.all_kwargs()})

    driver.set_active(CompileOnlyDriver())  # (reading driver.active would start the real one)
    JITFunction.run, Autotuner.run = run, autotune
    try:
        yield compiled
    finally:
        JITFunction.run, Autotuner.run = original_run, original_autotune
        # back to "not chosen yet" (reset_active() would start the real driver, which fails
        # without a GPU)
        driver._active = None


def resource_usage(cubin: bytes) -> tuple[int | None, int | None]:
    """(registers, stack bytes per thread) of a cubin, read with the cuobjdump shipped in
    Triton's wheel. Stack bytes above 0 mean registers spilled to local memory."""
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not tool.exists():
        return None, None
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([str(tool), "--dump-resource-usage", f.name], capture_output=True,
                             text=True).stdout
    regs = spills = None
    for token in out.replace(",", " ").split():
        if token.startswith("REG:"):
            regs = int(token[4:])
        elif token.startswith("STACK:") and spills is None:
            spills = int(token[6:])
    return regs, spills


def compile_case(p, arch: int) -> list[Compiled]:
    """Compile every kernel one planned triton case launches (forward, and backward if any)."""
    import numpy as np

    from .backends import family_of
    from .discovery import import_backend
    from .worker import case_seed

    family = family_of(p.case.backend)
    spec, params = p.kernel.spec, p.case.param_dict
    module = import_backend(Path(p.impl.path))
    inputs = spec.make_inputs(params, case_seed(p.case, 0, 0))
    args = [family.to_backend(inputs[k], p.case.dtype, "cpu") for k in spec.inputs]
    statics = spec.static_kwargs(params)
    with compile_only(arch) as compiled:
        module.forward(*args, **statics)
        if p.case.mode != "forward" and hasattr(module, "forward_train"):
            outputs, saved = module.forward_train(*args, **statics)
            outs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
            cot = [family.to_backend(np.ones(tuple(o.shape)), p.case.dtype, "cpu") for o in outs]
            module.backward(saved, *cot, **statics)
    result = []
    for name, kernel in compiled:
        regs, spills = resource_usage(kernel.asm["cubin"])
        md = kernel.metadata
        result.append(Compiled(name, p.case.id, md.num_warps, md.num_stages, md.shared, regs,
                               spills))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernbench.gpu_compile",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", nargs="?", default="suites/smoke.toml")
    parser.add_argument("--arch", type=int, default=90, help="compute capability x10 (90: H100)")
    parser.add_argument("--kernel", action="append", default=[])
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        print("gpu_compile: unset TRITON_INTERPRET (this compiles for a real GPU)",
              file=sys.stderr)
        return 2
    from .discovery import discover
    from .errors import UsageError
    from .suite import filter_cases, load_suite

    try:
        kernels = discover([])
        cases = filter_cases(load_suite(args.suite, kernels).cases, backends=["triton"],
                             kernels=args.kernel, known_kernels=kernels)
    except UsageError as exc:
        print(f"gpu_compile: error: {exc}", file=sys.stderr)
        return 2
    # one case per (kernel, variant, dtype, forward/backward): shapes rarely change the code
    chosen = {}
    for p in cases:
        chosen.setdefault((p.case.kernel, p.case.label, p.case.dtype, p.case.mode != "forward"), p)
    failures = 0
    print(f"{'case':<72} {'kernel':<28} warps stages  smem   regs stack")
    for p in chosen.values():
        try:
            for c in compile_case(p, args.arch):
                print(f"{c.case[:72]:<72} {c.kernel[:28]:<28} {c.num_warps:>5} {c.num_stages:>6} "
                      f"{c.shared_bytes:>6} {c.registers!s:>5} {c.stack_bytes!s:>5}")
        except Exception as exc:  # a kernel that does not compile for the GPU
            failures += 1
            text = str(exc).strip().splitlines()
            where, cause = (text[0] if text else ""), " | ".join(text[-3:])
            print(f"{p.case.id}: FAILED to compile for sm_{args.arch}: "
                  f"{type(exc).__name__} {where} ... {cause[-600:]}")
    print(f"gpu_compile: {len(chosen)} cases, {failures} failed, target sm_{args.arch}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
