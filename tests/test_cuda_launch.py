"""kernbench.cuda_launch on a CPU (numba's CUDA simulator, as conftest sets it): launch plans,
tensors handed to kernels without a copy, and the simulator's shared arrays made thread-safe."""

import threading

import numpy as np
import torch

from kernbench import cuda_launch


def test_tensors_reach_simulated_kernels_as_views_of_the_same_memory():
    t = torch.zeros(3, 4)
    view = cuda_launch.kernel_arg(t)
    view[1, 2] = 7.0
    assert t[1, 2] == 7.0
    assert cuda_launch.kernel_arg(5) == 5


def test_row_plans_are_powers_of_two_within_bounds():
    for cols in (1, 31, 32, 33, 100, 1000, 4096, 100_000):
        threads = cuda_launch.row_threads(cols)
        assert 32 <= threads <= 256 and threads & (threads - 1) == 0
        threads, per = cuda_launch.row_cache_plan(cols)
        assert threads <= 512 and per <= 16 and per & (per - 1) == 0
        assert threads * per >= min(cols, 512 * 16)  # the row fits the cache up to its limit


def test_simulated_shared_arrays_are_one_per_line_for_all_threads():
    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    assert cuda_launch.SIMULATED and FakeCUDAShared._kernbench_locked
    shared = FakeCUDAShared(0)
    start = threading.Barrier(64)
    got = []

    def thread():
        start.wait()  # every thread asks at once, as a block's threads do at a kernel's start
        a = shared.array(8, np.float32)
        b = shared.array((2, 4), np.float64)
        got.append((a, b))

    threads = [threading.Thread(target=thread) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(a) for a, _ in got}) == 1 and len({id(b) for _, b in got}) == 1
    a, b = got[0]
    assert a is not b and a.dtype == np.float32 and b.shape == (2, 4)
