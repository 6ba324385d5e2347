"""CuPy: the NumPy implementations run on a GPU. `<algo>_numpy.py` files are executed with CuPy
arrays: NumPy's functions dispatch to CuPy through `__array_function__`/`__array_ufunc__`, so
the column shows what "NumPy on a GPU" costs without a line of GPU code. An implementation that
calls something CuPy lacks fails with the reason recorded. CuPy has no bfloat16."""

from __future__ import annotations

import numpy as np

from .base import Family, device_index


class CupyFamily(Family):
    name = "cupy"
    source = "numpy"
    backends = ("cupy",)
    requires = ("cupy",)
    distributions = ("cupy-cuda12x", "cupy-cuda13x", "cupy")
    dtypes = ("float64", "float32", "float16")
    runs_on_cpu = False

    def unsupported(self, backend, device, dtype):
        if dtype not in self.dtypes:
            return f"CuPy has no {dtype}"
        if not self.is_gpu(device):
            return "CuPy runs on CUDA devices only (the numpy backend is the CPU column)"
        import cupy

        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except cupy.cuda.runtime.CUDARuntimeError as exc:
            return f"CuPy sees no CUDA device: {exc}"
        index = device_index(device)
        if index >= count:
            return f"{device}: CuPy sees {count} device(s)"
        return None

    def use_device(self, device):
        import cupy

        cupy.cuda.Device(device_index(device)).use()  # the calls, events and flush go there

    def to_backend(self, array, dtype, device):
        import cupy

        with cupy.cuda.Device(device_index(device)):
            if array.dtype.kind in "iub":
                return cupy.asarray(array)
            return cupy.asarray(np.asarray(array, dtype=dtype))

    def to_numpy(self, out):
        import cupy

        host = cupy.asnumpy(out)
        return host.astype(np.float64), host.dtype.name

    def synchronize(self, device):
        import cupy

        cupy.cuda.Device(device_index(device)).synchronize()

    def memory_method(self, device):
        return "cupy.mempool"

    def make_block(self, call, argsets, device, settings):
        import cupy

        from ..gpu_timing import (
            FLUSH_FACTOR,
            HEAD_START_CYCLES,
            SPIN_KERNEL_NAME,
            SPIN_KERNEL_SOURCE,
            make_event_block,
        )

        class _Event:
            def __init__(self):
                self.event = cupy.cuda.Event()

            def record(self):
                self.event.record()

            def elapsed_time(self, end):
                return cupy.cuda.get_elapsed_time(self.event, end.event)

        flush = None
        if getattr(settings, "l2_flush", True):
            with cupy.cuda.Device(device_index(device)):
                attrs = cupy.cuda.runtime.getDeviceProperties(device_index(device))
                buffer = cupy.empty(FLUSH_FACTOR * int(attrs["l2CacheSize"]) // 4, cupy.int32)
            flush = lambda: buffer.fill(0)  # noqa: E731
        # the head start (kernbench.gpu_timing), as torch's blocks have: CuPy's per-op launch
        # path is host-bound too, so without it a short NumPy-on-CuPy call would read host time
        spin = cupy.RawKernel(SPIN_KERNEL_SOURCE, SPIN_KERNEL_NAME)
        cycles = np.int64(HEAD_START_CYCLES)
        return make_event_block(call, argsets, new_event=_Event,
                                synchronize=lambda: self.synchronize(device), flush=flush,
                                head_start=lambda: spin((1,), (1,), (cycles,)))
