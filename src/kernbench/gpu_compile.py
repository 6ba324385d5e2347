"""Compile every Triton and numba-cuda kernel for a real GPU target, on a machine without a GPU.

The CPU interpreter (Triton) and simulator (numba-cuda) prove a kernel's arithmetic; they say
nothing about whether the kernel compiles for a GPU (type errors in lowering, shared memory over
the limit, register spills, float64 arithmetic in a float32 kernel).

- Triton: its wheel carries ptxas, so the whole pipeline (TTIR -> TTGIR -> LLIR -> PTX -> cubin)
  runs here: a stand-in driver reports an sm_90 (H100) target, every launch becomes a
  compile-only `warmup` (no kernel runs, outputs are garbage and ignored), and an autotuned
  kernel compiles every one of its configs.
- numba-cuda: each launch `kernel[grid, block](*args)` is replaced by numba's own
  `cuda.compile_ptx` for the argument types the launch would have used (NVVM from the
  nvidia-cuda-nvcc wheel, no driver needed), and Triton's ptxas assembles the PTX for the target.

Each launcher is called with the suite's inputs (and its backward, where it has one), so exactly
the specialisations the benchmark uses are compiled.

    python -m kernbench.gpu_compile [SUITE] [--arch 90] [--kernel NAME] [--backend triton]

Runs in its own process: TRITON_INTERPRET and NUMBA_ENABLE_CUDASIM must be unset before triton
and numba are imported.
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

#: the backends whose kernels this compiles
BACKENDS = ("triton", "numba_cuda")
#: environment variables that would replace GPU code generation by a CPU stand-in
CPU_STAND_INS = ("TRITON_INTERPRET", "NUMBA_ENABLE_CUDASIM")


@dataclass(frozen=True)
class Compiled:
    kernel: str  # the @triton.jit or @cuda.jit function
    case: str
    num_warps: int
    num_stages: int | None  # Triton's software pipelining depth (numba-cuda: none)
    shared_bytes: int
    registers: int | None
    stack_bytes: int | None  # local memory per thread: register spills (0 is what we want)
    f64_ops: int  # float64 instructions in the PTX: in a float32 case, a promotion to look at


#: registers one thread block may hold on sm_70 .. sm_90 (and the allocation granule per thread)
REGISTERS_PER_BLOCK = 65536
REGISTER_GRANULE = 8


def launch_problem(c: Compiled) -> str | None:
    """Why a compiled kernel could not launch with its block size, or None. numba-cuda gives
    ptxas no block size (no launch bounds), so a kernel may compile to more registers than its
    launch's threads can hold: on a GPU that launch fails ("too many resources requested")."""
    if c.registers is None:
        return None
    per_thread = -(-c.registers // REGISTER_GRANULE) * REGISTER_GRANULE
    if per_thread * 32 * c.num_warps > REGISTERS_PER_BLOCK:
        return (f"{c.kernel}: {c.registers} registers x {32 * c.num_warps} threads exceed the "
                f"{REGISTERS_PER_BLOCK} registers a block may hold: the launch would fail")
    return None


def f64_ops(ptx: str) -> int:
    """Instructions in `ptx` that compute in or convert to/from float64."""
    return sum(1 for line in ptx.splitlines()
               if ".f64" in line and not line.lstrip().startswith(("//", ".")))


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


@contextlib.contextmanager
def numba_compile_only(arch: int = 90):
    """Within this block, numba-cuda launches compile to PTX for `sm_<arch>` and do not run.
    Yields a list of (kernel name, threads per block, PTX) per distinct specialisation."""
    import numba
    from numba import cuda
    from numba.cuda import dispatcher
    from numba.cuda.dispatcher import CUDADispatcher

    class StandInDevice:  # device functions ask the current device for its target
        compute_capability = (arch // 10, arch % 10)

    compiled: list = []
    seen: set = set()
    original, original_device = CUDADispatcher.__getitem__, dispatcher.get_current_device

    def configure(self, config):
        block = config[1]
        threads = 1
        for d in (block if isinstance(block, tuple) else (block,)):
            threads *= d

        def compile_launch(*args):
            sig = tuple(numba.typeof(a) for a in args)
            key = (self.py_func, sig, threads)
            if key in seen:
                return
            seen.add(key)
            ptx, _ = cuda.compile_ptx(self.py_func, sig, cc=(arch // 10, arch % 10),
                                      fastmath=bool(self.targetoptions.get("fastmath")))
            compiled.append((self.py_func.__name__, threads, ptx))

        return compile_launch

    CUDADispatcher.__getitem__ = configure
    dispatcher.get_current_device = StandInDevice
    try:
        yield compiled
    finally:
        CUDADispatcher.__getitem__ = original
        dispatcher.get_current_device = original_device


def assemble(ptx: str, arch: int) -> tuple[bytes, int]:
    """PTX -> cubin with the ptxas shipped in Triton's wheel; also returns the static shared
    memory ptxas reports (bytes). Raises RuntimeError with ptxas's message if it fails."""
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "k.ptx", Path(tmp) / "k.cubin"
        src.write_text(ptx)
        run = subprocess.run([str(tool), f"-arch=sm_{arch}", "-v", str(src), "-o", str(out)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"ptxas: {run.stderr.strip()[-800:]}")
        smem = 0
        for line in run.stderr.splitlines():
            if "bytes smem" in line:
                smem = max(smem, int(line.split("bytes smem")[0].split(",")[-1].split()[-1]))
        return out.read_bytes(), smem


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
    """Compile every kernel one planned case launches (forward, and backward if any)."""
    if p.case.backend.split(":")[0] == "numba_cuda":
        with numba_compile_only(arch) as launched:
            _launch_case(p)
        result = []
        for name, threads, ptx in launched:
            cubin, smem = assemble(ptx, arch)
            regs, spills = resource_usage(cubin)
            result.append(Compiled(name, p.case.id, max(threads // 32, 1), None, smem, regs,
                                   spills, f64_ops(ptx)))
        return result
    with compile_only(arch) as compiled:
        _launch_case(p)
    result = []
    for name, kernel in compiled:
        regs, spills = resource_usage(kernel.asm["cubin"])
        md = kernel.metadata
        result.append(Compiled(name, p.case.id, md.num_warps, md.num_stages, md.shared, regs,
                               spills, f64_ops(kernel.asm["ptx"])))
    return result


def _launch_case(p) -> None:
    """Call a case's launchers (forward, and backward for backward modes) on CPU tensors."""
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
    module.forward(*args, **statics)
    if p.case.mode != "forward" and hasattr(module, "forward_train"):
        outputs, saved = module.forward_train(*args, **statics)
        outs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        cot = [family.to_backend(np.ones(tuple(o.shape)), p.case.dtype, "cpu") for o in outs]
        module.backward(saved, *cot, **statics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernbench.gpu_compile",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", nargs="?", default="suites/smoke.toml")
    parser.add_argument("--arch", type=int, default=90, help="compute capability x10 (90: H100)")
    parser.add_argument("--kernel", action="append", default=[])
    parser.add_argument("--backend", action="append", choices=BACKENDS, default=[],
                        help="compile only this backend's kernels (default: all of "
                             f"{', '.join(BACKENDS)})")
    args = parser.parse_args(argv)
    stand_ins = [v for v in CPU_STAND_INS if os.environ.get(v, "0") not in ("", "0")]
    if stand_ins:
        print(f"gpu_compile: unset {' and '.join(stand_ins)} (this compiles for a real GPU)",
              file=sys.stderr)
        return 2
    from .backends import family_of
    from .discovery import discover
    from .errors import UsageError
    from .suite import filter_cases, load_suite

    try:
        kernels = discover([])
        suite = load_suite(args.suite, kernels)
        wanted = set(args.backend or BACKENDS)
        # (a dtype the backend does not take is recorded `unsupported` by a run: nothing to
        # compile)
        cases = [p for p in filter_cases(suite.cases, kernels=args.kernel, known_kernels=kernels)
                 if p.case.backend.split(":")[0] in wanted
                 and p.case.dtype in family_of(p.case.backend).dtypes]
    except UsageError as exc:
        print(f"gpu_compile: error: {exc}", file=sys.stderr)
        return 2
    # one case per (kernel, variant, dtype, forward/backward, parameters): `backward` and
    # `forward_backward` launch the same kernels, but a shape can choose other kernels (rms_norm
    # and layer_norm switch to chunked kernels for wide rows) or other specialisations, so every
    # shape is compiled
    chosen = {}
    for p in cases:
        key = (p.case.kernel, p.case.label, p.case.dtype, p.case.mode != "forward",
               tuple(sorted((k, repr(v)) for k, v in p.case.param_dict.items())))
        chosen.setdefault(key, p)
    failures = 0
    print(f"{'case':<72} {'kernel':<28} warps stages  smem   regs stack   f64")
    for p in chosen.values():
        try:
            for c in compile_case(p, args.arch):
                stages = "-" if c.num_stages is None else c.num_stages
                print(f"{c.case[:72]:<72} {c.kernel[:28]:<28} {c.num_warps:>5} {stages:>6} "
                      f"{c.shared_bytes:>6} {c.registers!s:>5} {c.stack_bytes!s:>5} "
                      f"{c.f64_ops:>5}")
                problem = launch_problem(c)
                if problem:
                    raise RuntimeError(problem)
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
