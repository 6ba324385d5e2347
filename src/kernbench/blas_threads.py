"""Single-threaded BLAS for numba kernels that call `np.dot` from inside a prange loop.

numba's np.dot calls SciPy's BLAS (OpenBLAS, with its own thread pool). Called from every
prange thread at once, each GEMM starts as many BLAS threads as there are cores, and the cores
are oversubscribed: the numba attention forward (B=1, H=8, S=2048, D=64, float32, 2-core VM;
medians of 11 in separate processes, three of each, alternating) took 85-103 ms that way, its
samples spread over 61-216 ms, and 46-51 ms with BLAS held to one thread per call. (Timed in
one process, taking turns, the two come out alike: BLAS's idle threads spin for a while after
an unlimited call and take a core from the next one.) The parallelism belongs to prange; BLAS
runs serially under it.

The limit is set for the duration of the kernel call only (threadpoolctl, ~10 us a call with a
controller built once; building one walks the loaded libraries, ~0.7 ms), so NumPy's BLAS
keeps its threads everywhere else."""

from __future__ import annotations

import contextlib
import functools


@functools.lru_cache(maxsize=1)
def _controller():
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS numba binds, so it is seen)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def single_threaded_blas():
    """Hold every loaded BLAS to one thread while the block runs."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
