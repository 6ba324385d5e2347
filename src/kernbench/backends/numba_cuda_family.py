"""numba-cuda: CUDA kernels written in Python (`@cuda.jit`, thread and block indices, shared
memory, barriers), launched on torch tensors (kernbench.cuda_launch) like Triton's. Files are
`<algo>_numbacuda.py`; the backend is `numba_cuda`. On a GPU they run for real; on a CPU they
run in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set before numba is imported), one
Python thread per CUDA thread: it proves a kernel's indexing, barriers and arithmetic on tiny
shapes (suites/simulated.toml), is flagged `interpreted`, and is far too slow for any other
suite. `python -m kernbench.gpu_compile` compiles the kernels for sm_90 without a GPU."""

from __future__ import annotations

from .base import is_cuda
from .torch_family import TorchLauncherFamily


class NumbaCudaFamily(TorchLauncherFamily):
    name = "numba_cuda"
    source = "numbacuda"  # file names split family from variant at the first underscore
    backends = ("numba_cuda",)
    requires = ("numba_cuda", "torch")
    distributions = ("numba-cuda", "numba")
    dtypes = ("float64", "float32")
    cpu_simulator = True

    def worker_env(self, device):
        # "0" on a GPU: an exported NUMBA_ENABLE_CUDASIM=1 would run the simulator, unflagged
        return {"NUMBA_ENABLE_CUDASIM": "0" if is_cuda(device) else "1"}

    def unsupported(self, backend, device, dtype):
        if dtype not in self.dtypes:
            return (f"the numba-cuda kernels compute in float32 or float64 (numba has no "
                    f"{dtype} arrays)")
        if device != "cpu" and not is_cuda(device):
            return f"numba_cuda does not know device {device!r}"
        reason = super().unsupported(backend, device, dtype)
        if reason is None and is_cuda(device):
            from numba import cuda

            if not cuda.is_available():
                return "numba-cuda finds no usable CUDA driver or device"
        return reason
