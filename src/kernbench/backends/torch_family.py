"""PyTorch: `torch_eager` calls the backend file's function as written; `torch_compile` wraps the
same function in `torch.compile`. Dynamo's caches are reset per case so that one case's graphs
(and its cache-size limit, past which Dynamo silently falls back to eager) never leak into the
next; the inductor on-disk cache is private to the run (TORCHINDUCTOR_CACHE_DIR), so the first
compile is cold and a second compile after a reset measures the warm-cache cost honestly."""

from __future__ import annotations

import numpy as np

from .base import Family, device_index, is_cuda, numpy_dtype_name


class TorchFamily(Family):
    name = "torch"
    backends = ("torch_eager", "torch_compile")
    requires = ("torch",)
    # on CUDA builds cuBLAS and cuDNN come as their own wheels, versioned apart from torch
    distributions = ("torch", "nvidia-cublas-cu12", "nvidia-cudnn-cu12", "nvidia-cublas",
                     "nvidia-cudnn-cu13")

    def unsupported(self, backend, device, dtype):
        if dtype not in self.dtypes:
            return f"{backend} does not support {dtype}"
        if device == "cpu":
            return None
        if is_cuda(device):
            import torch

            if not torch.cuda.is_available():
                return "torch sees no CUDA device here"
            index = device_index(device)
            if index >= torch.cuda.device_count():
                return f"{device}: only {torch.cuda.device_count()} CUDA device(s) here"
            return None
        return f"{backend} does not know device {device!r}"

    def setup(self, threads):
        import torch

        torch.set_num_threads(threads)

    def use_device(self, device):
        # Events record on the current device's stream and Triton launches on the current
        # device: on cuda:1 both would otherwise go to device 0 (an empty stream timed; a
        # kernel handed another device's pointers)
        if is_cuda(device) and ":" in device:  # plain "cuda" is the current device already
            # (and torch.cuda.set_device refuses a torch.device without an index)
            import torch

            torch.cuda.set_device(device_index(device))

    def torch_dtype(self, dtype: str):
        import torch

        return getattr(torch, dtype)

    def to_backend(self, array, dtype, device):
        import torch

        # one copy, made by the conversion itself: `copy=True` copies even where the tensor
        # is already of that dtype on that device (float64 or integers on the CPU). A NumPy
        # copy first doubled the host work: ~0.1 s more per 1 GiB draw, 2 s on first touch
        t = torch.from_numpy(np.require(array, requirements=("C", "W")))
        if array.dtype.kind in "iub":
            return t.to(device, copy=True)
        return t.to(device=device, dtype=self.torch_dtype(dtype), copy=True)

    def to_numpy(self, out):
        import torch

        if not isinstance(out, torch.Tensor):
            out = torch.as_tensor(out)
        name = numpy_dtype_name(out.dtype)
        return out.detach().to("cpu", torch.float64).numpy(), name

    def prepare(self, backend, fn, static_kwargs, device):
        import torch

        def call(*args):
            return fn(*args, **static_kwargs)

        if backend == "torch_compile":
            torch._dynamo.reset()
            return torch.compile(call, dynamic=False)
        return call

    def synchronize(self, device):
        if is_cuda(device):
            import torch

            torch.cuda.synchronize(device)

    def to_backend_train(self, array, dtype, device, grad):
        t = self.to_backend(array, dtype, device)
        return t.requires_grad_() if grad else t

    def prepare_train(self, backend, module, static_kwargs, device, spec):
        fn = self.prepare(backend, module.forward, static_kwargs, device)
        index = [spec.inputs.index(g) for g in spec.grad_inputs]
        return AutogradTrainer(fn, index, len(spec.inputs))

    def make_block(self, call, argsets, device, settings):
        if not is_cuda(device):
            return super().make_block(call, argsets, device, settings)
        import torch

        from ..gpu_timing import FLUSH_FACTOR, HEAD_START_CYCLES, make_event_block, make_graph_block

        def new_event():
            return torch.cuda.Event(enable_timing=True)

        def sync():
            torch.cuda.synchronize(device)

        if getattr(settings, "cuda_graph", False):
            def capture(body):
                graph = torch.cuda.CUDAGraph()
                side = torch.cuda.Stream(device)
                side.wait_stream(torch.cuda.current_stream(device))
                with torch.cuda.stream(side):  # capture needs a warm-up off the default stream
                    body()
                torch.cuda.current_stream(device).wait_stream(side)
                with torch.cuda.graph(graph):
                    body()
                return graph.replay

            return make_graph_block(call, argsets, capture=capture, new_event=new_event,
                                    synchronize=sync)
        flush = None
        if getattr(settings, "l2_flush", True):
            l2 = torch.cuda.get_device_properties(device).L2_cache_size
            buffer = torch.empty(FLUSH_FACTOR * l2 // 4, dtype=torch.int32, device=device)
            flush = buffer.zero_
        return make_event_block(call, argsets, new_event=new_event, synchronize=sync,
                                flush=flush,
                                head_start=lambda: torch.cuda._sleep(HEAD_START_CYCLES))

    def gpu_timer(self, settings):
        return "cuda_graph" if getattr(settings, "cuda_graph", False) else "cuda_events"

    def memory_method(self, device):
        return "torch.cuda" if is_cuda(device) else "rss"

    def reset_compile_counters(self, backend):
        if backend == "torch_compile":
            from torch._dynamo.utils import counters

            counters.clear()

    def compile_info(self, backend):
        if backend != "torch_compile":
            return None
        from torch._dynamo.utils import counters

        return {
            "graphs": int(counters["stats"].get("unique_graphs", 0)),
            "graph_breaks": int(sum(counters["graph_break"].values())),
            "recompiles": int(sum(counters["recompiles"].values())),
        }


class TorchLauncherFamily(TorchFamily):
    """Hand-written GPU kernels launched on torch tensors (Triton, numba-cuda): torch allocates
    and times (events, L2 flush, CUDA graphs, allocator peaks), the backend file's launcher is
    called as written, and its own `forward_train`/`backward` are the backward modes. On a CPU
    the kernels run under an interpreter or simulator, so every record there is flagged
    `interpreted` and kept out of speed comparisons."""

    def prepare(self, backend, fn, static_kwargs, device):
        return lambda *args: fn(*args, **static_kwargs)

    def prepare_train(self, backend, module, static_kwargs, device, spec):
        from .base import HandWrittenTrainer

        return HandWrittenTrainer(module, static_kwargs, len(spec.inputs),
                                  lambda: self.synchronize(device))

    def to_backend_train(self, array, dtype, device, grad):
        return self.to_backend(array, dtype, device)

    def reset_compile_counters(self, backend):
        pass

    def compile_info(self, backend):
        return None

    def flags(self, backend, device):
        return [] if is_cuda(device) else ["interpreted"]


class AutogradTrainer:
    """torch_eager / torch_compile backward: autograd through the (compiled) forward. In
    `backward` mode the graph is kept (retain_graph) and only torch.autograd.grad is timed."""

    def __init__(self, fn, grad_index: list[int], n_inputs: int):
        self.fn, self.index, self.n = fn, grad_index, n_inputs

    def _outs(self, out):
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    def state(self, *args):
        return self._outs(self.fn(*args)), [args[i] for i in self.index]

    def outputs(self, state):
        return state[0]

    def backward(self, state, *cotangents):
        import torch

        outs, leaves = state
        return torch.autograd.grad(outs, leaves, cotangents, retain_graph=True)

    def forward_backward(self, *a):
        import torch

        args = a[:self.n]
        outs = self._outs(self.fn(*args))
        return torch.autograd.grad(outs, [args[i] for i in self.index], a[self.n:])

    def saved_bytes(self, *args):
        """Bytes of the tensors autograd saves for backward (each storage once), seen through
        saved_tensors_hooks."""
        import torch

        seen: dict[int, int] = {}

        def pack(t):
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
            return t

        try:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                self.fn(*args)
        except Exception:  # some compiled graphs refuse hooks: then the figure is unknown
            return None
        return sum(seen.values())
