"""What a backend family adapter must do (one class per framework, imports inside the class).

A *family* is one framework (numpy, numba, torch, jax, triton); it serves one or more *backends*
(torch serves torch_eager and torch_compile from the same `<algo>_torch.py`). The adapter owns
everything framework-specific, so the worker that runs a case stays framework-agnostic:

- `unsupported(backend, device, dtype)`: None, or the reason this combination cannot run;
- `to_backend(array, dtype, device)`: a float64/int NumPy array -> the framework's array;
- `to_numpy(out)`: a framework output -> (float64 NumPy array, name of the dtype it was stored in);
- `prepare(backend, fn, static_kwargs, device)`: the callable the user would call in steady state
  (jitted, compiled) taking only arrays; for asynchronous frameworks it blocks until the result
  is ready, so a clock read after it is honest;
- `use_device(device)`: make the case's device the current one (`cuda:1`: events, launches and
  allocations that name no device go to the current one, device 0 unless told);
- `synchronize(device)`: wait for queued device work before a clock read;
- `memory_method(device)`: which peak-memory method applies (see kernbench.memory);
- `make_block(call, argsets, device, settings)`: the timed block (kernbench.timing on a CPU;
  CUDA events with an L2 flush, or a CUDA graph, on a GPU: kernbench.gpu_timing).

Frameworks are imported lazily, only in the worker process that runs their cases: the parent
process (runner, report, gate) never imports one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


class Family:
    name: str = ""
    #: which backend files this family runs: `<algo>_<source>.py` (CuPy runs the NumPy files)
    source: str = ""
    backends: tuple[str, ...] = ()
    #: Python modules that must be importable for this family to run
    requires: tuple[str, ...] = ()
    #: distributions whose versions go in the run header
    distributions: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ("float64", "float32", "bfloat16", "float16")
    #: False for GPU-only families (CuPy): `make test` on a CPU cannot exercise them
    runs_on_cpu: bool = True
    #: True where the CPU runs are a simulator of the GPU, far too slow for ordinary shapes
    #: (numba-cuda): `make test` runs them on suites/simulated.toml's tiny shapes
    cpu_simulator: bool = False

    # -- availability --------------------------------------------------------------------
    def missing(self) -> str | None:
        """Reason this family cannot run here (a module missing), without importing it."""
        for mod in self.requires:
            if importlib.util.find_spec(mod) is None:
                return f"{mod} is not installed (pip install 'kernbench[{self.name}]')"
        return None

    def unsupported(self, backend: str, device: str, dtype: str) -> str | None:
        if dtype not in self.dtypes:
            return f"{backend} does not support {dtype}"
        if device != "cpu":
            return f"{backend} runs on the CPU only, not {device}"
        return None

    def worker_env(self, device: str) -> dict[str, str]:
        """Environment variables the worker process for this family needs before importing."""
        return {}

    # -- running -------------------------------------------------------------------------
    def setup(self, threads: int) -> None:
        """Called once in the worker before the first case: fix thread pools."""

    def use_device(self, device: str) -> None:
        """Before each case: make `device` current. Nothing to do on a CPU."""

    def to_backend(self, array: np.ndarray, dtype: str, device: str) -> Any:
        """`array` (float64, or integer) as this framework's array of `dtype` on `device`:
        always a copy, never a view of `array`, float64 included. The worker converts the
        timed copies and the memory run from the very draw the first call saw: a view would
        let an in-place kernel (AdamW) change that draw under them."""
        raise NotImplementedError

    def to_numpy(self, out: Any) -> tuple[np.ndarray, str]:
        raise NotImplementedError

    def prepare(self, backend: str, fn: Callable, static_kwargs: dict, device: str) -> Callable:
        if static_kwargs:
            return lambda *args: fn(*args, **static_kwargs)
        return fn

    def synchronize(self, device: str) -> None:
        """CPU frameworks here are synchronous once `prepare` has blocked."""

    def memory_method(self, device: str) -> str:
        return "rss"

    def compile_info(self, backend: str) -> dict | None:
        """Counters from the compiler (recompiles, graph breaks) after a case, if any."""
        return None

    def reset_compile_counters(self, backend: str) -> None:
        pass

    def is_gpu(self, device: str) -> bool:
        return is_cuda(device)

    def gpu_timer(self, settings: Any) -> str:
        """What times a GPU case's calls (recorded as `timer`): `cuda_events`, `cuda_graph`
        (replays, where the family supports `cuda_graph = true`), or `host_clock`."""
        return "cuda_events"

    def make_block(self, call: Callable, argsets: list, device: str, settings: Any
                   ) -> Callable[[int], float]:
        from ..timing import make_block

        return make_block(call, argsets, lambda: self.synchronize(device))

    def prepare_train(self, backend: str, module: Any, static_kwargs: dict, device: str,
                      spec: Any) -> Trainer:
        """The Trainer for backward modes; raises Unsupported with the reason."""
        return HandWrittenTrainer(module, static_kwargs, len(spec.inputs),
                                  lambda: self.synchronize(device))

    def to_backend_train(self, array: np.ndarray, dtype: str, device: str, grad: bool) -> Any:
        """An input for a backward mode (`grad`: it receives a gradient)."""
        return self.to_backend(array, dtype, device)

    def flags(self, backend: str, device: str) -> list[str]:
        """Flags every record of this backend carries (e.g. `interpreted`)."""
        return []


class Unsupported(Exception):
    """This case cannot run on this backend, for the reason given (recorded `unsupported`)."""


class Trainer:
    """Backward modes for one case. `state(*args)` runs the forward pass and keeps what the
    backward pass needs (not timed in `backward` mode); `backward(state, *cotangents)` returns
    the gradients of `spec.grad_inputs` in order; `forward_backward(*args, *cotangents)` does
    both, as a training step does; `outputs(state)` gives the forward outputs (a tuple);
    `saved_bytes(*args)` the bytes of the saved state (None where it cannot be seen)."""

    def state(self, *args: Any) -> Any:
        raise NotImplementedError

    def outputs(self, state: Any) -> tuple:
        raise NotImplementedError

    def backward(self, state: Any, *cotangents: Any) -> tuple:
        raise NotImplementedError

    def forward_backward(self, *args_and_cotangents: Any) -> tuple:
        raise NotImplementedError

    def saved_bytes(self, *args: Any) -> int | None:
        return None


def _as_tuple(out: Any) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def nbytes(obj: Any) -> int:
    """Bytes of every array in a (nested) container: NumPy, torch or anything with nbytes."""
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return sum(nbytes(v) for v in obj)
    size = getattr(obj, "nbytes", None)
    return int(size) if isinstance(size, (int, np.integer)) else 0


class HandWrittenTrainer(Trainer):
    """A backend file's own `forward_train(*inputs, **static) -> (outputs, saved)` and
    `backward(saved, *cotangents, **static) -> grads`: how NumPy, numba and Triton
    implementations state exactly what they save."""

    def __init__(self, module: Any, static_kwargs: dict, n_inputs: int,
                 synchronize: Callable[[], None] = lambda: None):
        missing = [f for f in ("forward_train", "backward") if not callable(
            getattr(module, f, None))]
        if missing:
            raise Unsupported(f"{Path(module.__file__).name} has no hand-written backward "
                              f"(needs {' and '.join(missing)})")
        self.fwd, self.bwd = module.forward_train, module.backward
        self.static, self.n = static_kwargs, n_inputs
        self.sync = synchronize

    def state(self, *args):
        out, saved = self.fwd(*args, **self.static)
        return _as_tuple(out), saved

    def outputs(self, state):
        return state[0]

    def backward(self, state, *cotangents):
        return _as_tuple(self.bwd(state[1], *cotangents, **self.static))

    def forward_backward(self, *a):
        _, saved = self.fwd(*a[:self.n], **self.static)
        return _as_tuple(self.bwd(saved, *a[self.n:], **self.static))

    def saved_bytes(self, *args):
        return nbytes(self.fwd(*args, **self.static)[1])


def is_cuda(device: str) -> bool:
    """`cuda` or `cuda:N` (suite files and filters are validated by kernbench.suite)."""
    return device == "cuda" or device.startswith("cuda:")


def device_index(device: str) -> int:
    """The GPU index of `cuda:N` (N); plain `cuda` is device 0."""
    return int(device.split(":", 1)[1]) if ":" in device else 0


def file_source(family: Family) -> str:
    return family.source or family.name


def numpy_dtype_name(dtype: Any) -> str:
    name = str(dtype).replace("torch.", "")
    return {"bfloat16": "bfloat16", "float": "float32", "double": "float64",
            "half": "float16"}.get(name, name)
