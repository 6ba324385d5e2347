"""single_threaded_blas: every loaded BLAS runs one thread inside the block, and gets its own
thread count back after it (NumPy's BLAS keeps its threads outside numba kernels)."""

from threadpoolctl import threadpool_info

from kernbench.blas_threads import single_threaded_blas


def _blas_threads():
    return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas"}


def test_blas_is_single_threaded_inside_and_restored_after():
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS numba's np.dot calls)

    before = _blas_threads()
    assert before, "no BLAS library loaded"
    with single_threaded_blas():
        assert set(_blas_threads().values()) == {1}
    assert _blas_threads() == before
