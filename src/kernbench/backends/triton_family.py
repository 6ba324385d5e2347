"""Triton: kernels plus launchers on torch tensors. On a GPU they compile and run for real; on
the CPU they run only under the interpreter (TRITON_INTERPRET=1, set in the worker's environment
before triton is imported), which proves correctness but is ~100x slower than NumPy: every record
is flagged `interpreted` and kept out of speed comparisons."""

from __future__ import annotations

from .base import is_cuda
from .torch_family import TorchLauncherFamily


class TritonFamily(TorchLauncherFamily):
    name = "triton"
    backends = ("triton",)
    requires = ("triton", "torch")
    distributions = ("triton",)

    def worker_env(self, device):
        # "0" on a GPU, not unset: an exported TRITON_INTERPRET=1 would otherwise run the "GPU"
        # cases in the interpreter, unflagged
        return {"TRITON_INTERPRET": "0" if is_cuda(device) else "1"}

    def unsupported(self, backend, device, dtype):
        if device != "cpu" and not is_cuda(device):
            return f"triton does not know device {device!r}"
        return super().unsupported(backend, device, dtype)
