"""The backend families kernbench knows: discovery, the runner, the workers and the run header
(versions, fingerprint) read this list.

Adding a framework means adding a `Family` subclass here and a file suffix kernels can use; a
kernel folder then adds `<algo>_<family>.py` files. The README's "Adding a backend family" lists
the few places that name families for presentation or tooling (report column order, the GPU
compile check, the profilers).
"""

from __future__ import annotations

from ..errors import unknown
from .base import Family, file_source
from .cupy_family import CupyFamily
from .jax_family import JaxFamily
from .numba_cuda_family import NumbaCudaFamily
from .numba_family import NumbaFamily
from .numpy_family import NumpyFamily
from .torch_family import TorchFamily
from .triton_family import TritonFamily

FAMILIES: dict[str, Family] = {
    f.name: f for f in (NumpyFamily(), NumbaFamily(), TorchFamily(), JaxFamily(), TritonFamily(),
                        NumbaCudaFamily(), CupyFamily())
}
#: the file suffixes kernels use: `<algo>_<source>.py`
SOURCES: tuple[str, ...] = tuple(dict.fromkeys(file_source(f) for f in FAMILIES.values()))
BACKENDS: dict[str, Family] = {b: f for f in FAMILIES.values() for b in f.backends}


def family_of(backend: str) -> Family:
    """The family of a backend name (`torch_compile`, or `torch_compile:variant`)."""
    base = backend.split(":", 1)[0]
    try:
        return BACKENDS[base]
    except KeyError:
        raise unknown("backend", backend, BACKENDS) from None


def backends_for_source(source: str) -> tuple[str, ...]:
    """Every backend that runs `<algo>_<source>.py` files (numpy -> numpy, cupy)."""
    return tuple(b for b, f in BACKENDS.items() if file_source(f) == source)


__all__ = ["BACKENDS", "FAMILIES", "SOURCES", "Family", "backends_for_source", "family_of"]
