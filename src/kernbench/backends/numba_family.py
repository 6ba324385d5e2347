"""numba: `@njit` kernels (parallel loops where they help). The backend file owns the jitting;
the first call compiles, which the worker times separately as compile_s."""

from __future__ import annotations

import os

from .numpy_family import NumpyFamily


class NumbaFamily(NumpyFamily):
    name = "numba"
    backends = ("numba",)
    requires = ("numba",)
    distributions = ("numba", "llvmlite")
    dtypes = ("float64", "float32")

    def unsupported(self, backend, device, dtype):
        if dtype in ("bfloat16", "float16"):
            return f"numba has no {dtype} arithmetic on the CPU"
        return super().unsupported(backend, device, dtype)

    def worker_env(self, device):
        # numba's cache must not leak compiled code between runs: compile time is a metric.
        return {"NUMBA_CACHE_DIR": os.path.join(os.environ.get("TMPDIR", "/tmp"), "numba")}

    def setup(self, threads):
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
