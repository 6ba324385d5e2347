"""NumPy: the readable form of each algorithm, and the speed baseline everything is compared to."""

from __future__ import annotations

import numpy as np

from .base import Family


class NumpyFamily(Family):
    name = "numpy"
    backends = ("numpy",)
    requires = ("numpy",)
    distributions = ("numpy",)
    dtypes = ("float64", "float32", "float16")

    def unsupported(self, backend, device, dtype):
        if dtype == "bfloat16":
            return ("NumPy has no bfloat16 type (ml_dtypes emulates it element by element, which "
                    "would not be a NumPy kernel)")
        return super().unsupported(backend, device, dtype)

    def to_backend(self, array, dtype, device):
        # np.require keeps 0-d arrays 0-d (ascontiguousarray would make them 1-d)
        if array.dtype.kind in "iub":
            return np.require(array, requirements="C").copy()
        return np.require(array, dtype=dtype, requirements="C").copy()

    def to_numpy(self, out):
        out = np.asarray(out)
        return out.astype(np.float64), out.dtype.name

    def memory_method(self, device):
        return "tracemalloc"
