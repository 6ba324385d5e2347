"""Derived throughput and the `suspect` flag for results faster than the machine can go."""

import pytest

from kernbench.metrics import ceiling_for, derive, needs_roof_recheck, rejudge

CEILINGS = {"cpu": {"copy_gbps": 40.0, "gemm_gflops": {"float32": 200.0}}}


def record(median, params):
    return {"device": "cpu", "dtype": "float32", "params": params,
            "time": {"median_s": median, "iqr_s": 0.01 * median}, "flags": []}


def test_softmax_throughput(kernels):
    spec = kernels["softmax"].spec
    r = derive(record(1e-3, {"rows": 1000, "cols": 1000}), spec, CEILINGS)
    assert abs(r["gbps"] - 8.0) < 1e-9  # 2 * 4 MB in 1 ms
    assert abs(r["gflops"] - 5.0) < 1e-9
    assert abs(r["roofline_fraction"] - 0.2) < 1e-9
    assert "suspect" not in r["flags"]


def test_faster_than_memory_is_suspect(kernels):
    spec = kernels["softmax"].spec
    r = derive(record(1e-4, {"rows": 1000, "cols": 1000}), spec, CEILINGS)  # 80 GB/s > 40
    assert "suspect" in r["flags"]


def test_matmul_bound_by_compute(kernels):
    spec = kernels["matmul"].spec
    r = derive(record(0.1, {"m": 2048, "n": 2048, "k": 2048}), spec, CEILINGS)
    assert abs(r["gflops"] - 2 * 2048**3 / 0.1 / 1e9) < 1e-6
    assert r["roofline_gflops"] == 200.0
    assert "suspect" not in r["flags"]
    fast = derive(record(0.01, {"m": 2048, "n": 2048, "k": 2048}), spec, CEILINGS)
    assert "suspect" in fast["flags"]


@pytest.mark.parametrize("name, params", [("adamw_step", {"numel": 1 << 20}),
                                          ("softmax", {"rows": 1000, "cols": 1000})])
def test_the_memory_roof_is_the_better_of_copy_and_update(kernels, name, params):
    """Copy and in-place update both count bytes read + written; a copy also pays unseen
    write-allocate reads, so the update figure is the machine's roof, for a kernel updating
    in place (AdamW) and one writing a new buffer (softmax) alike: 50 GB/s against copy 40 and
    update 60 is not suspect, and 1.5x that is."""
    ceilings = {"cpu": {**CEILINGS["cpu"], "update_gbps": 60.0}}
    spec = kernels[name].spec
    params = spec.resolve(params)
    seconds = spec.bytes(params, 4) / 50e9
    r = derive(record(seconds, params), spec, ceilings)
    assert abs(r["gbps"] - 50.0) < 1e-6 and "suspect" not in r["flags"]
    if not spec.flops(params) or r["roofline_gflops"] < 200.0:  # memory-bound
        assert abs(r["roofline_fraction"] - 50 / 60) < 1e-9
    assert "suspect" in derive(record(seconds / 1.5, params), spec, ceilings)["flags"]
    # a copy figure above the update one (a streaming-store copy) is the roof then
    assert ceiling_for({"cpu": {"copy_gbps": 70.0, "update_gbps": 60.0}}, "cpu",
                       "float32")[1] == 70.0
    assert ceiling_for({"cpu": {"copy_gbps": 70.0}}, "cpu", "float32")[1] == 70.0


def test_suspect_margin_is_ten_percent_plus_the_cases_spread(kernels):
    """At the boundary: with no spread, 1.05x the ceiling is not suspect and 1.15x is; with an
    IQR of 20% of the median, 1.25x is not and 1.35x is."""
    spec = kernels["softmax"].spec
    params = {"rows": 1000, "cols": 1000}  # 8 MB: 0.2 ms at the 40 GB/s ceiling

    def flagged(fraction, spread):
        median = 8e6 / 40e9 / fraction
        r = derive({"device": "cpu", "dtype": "float32", "params": params, "flags": [],
                    "time": {"median_s": median, "iqr_s": spread * median}}, spec, CEILINGS)
        assert abs(r["roofline_fraction"] - fraction) < 1e-9
        return "suspect" in r["flags"]

    assert not flagged(1.05, 0.0) and flagged(1.15, 0.0)
    assert not flagged(1.25, 0.2) and flagged(1.35, 0.2)


def test_a_memory_bound_suspect_is_judged_again_against_a_remeasured_roof(kernels):
    """Softmax at 80 GB/s against a 40 GB/s roof is suspect. Re-measured at copy 78 and update
    85 GB/s, it is within the roof (80 < 85 x 1.1): roof_rose, ranked, its fraction still
    against the run's roof. Re-measured at 50/60 it stays suspect. A compute-bound suspect
    (matmul past the GEMM rate) and a GPU case are not re-measured."""
    spec = kernels["softmax"].spec
    params = {"rows": 1000, "cols": 1000}

    def fast():
        r = derive(record(1e-4, params), spec, CEILINGS)
        assert "suspect" in r["flags"] and needs_roof_recheck(r, CEILINGS)
        return r

    now = {"copy_gbps": 78.0, "update_gbps": 85.0, "measured": "t", "method": {}}
    r = rejudge(fast(), CEILINGS, now)
    assert r["flags"] == ["roof_rose"] and abs(r["roofline_fraction"] - 2.0) < 1e-9
    assert r["roof_recheck"] == {"copy_gbps": 78.0, "update_gbps": 85.0, "measured": "t"}
    r = rejudge(fast(), CEILINGS, {"copy_gbps": 50.0, "update_gbps": 60.0})
    assert r["flags"] == ["suspect"] and r["roof_recheck"]["update_gbps"] == 60.0
    # each figure is the better of the run's and the re-measured one
    assert rejudge(fast(), CEILINGS, {"copy_gbps": 1.0, "update_gbps": 85.0})["flags"] == [
        "roof_rose"]
    # only a suspect case is judged again
    honest = derive(record(2.3e-4, params), spec, CEILINGS)
    assert rejudge(honest, CEILINGS, now)["flags"] == []
    matmul = derive(record(0.01, {"m": 2048, "n": 2048, "k": 2048}), kernels["matmul"].spec,
                    CEILINGS)
    assert "suspect" in matmul["flags"] and not needs_roof_recheck(matmul, CEILINGS)
    gpu = {"cuda:0": CEILINGS["cpu"]}
    on_gpu = derive({**record(1e-4, params), "device": "cuda:0"}, spec, gpu)
    assert "suspect" in on_gpu["flags"] and not needs_roof_recheck(on_gpu, gpu)


def test_gemm_class_flop_models(kernels):
    """The models that put GEMM-bound kernels on the roofline, counted here independently: a
    multiply-add is 2 flops; attention does two S x S x D products (a causal mask halves them)
    and its backward five; a matmul's backward is two GEMMs of the forward's size."""
    m, n, k = 3, 5, 7
    mm = kernels["matmul"].spec
    assert mm.flops({"m": m, "n": n, "k": k}) == 2 * m * n * k
    assert mm.backward_flops({"m": m, "n": n, "k": k}) == 2 * (2 * m * n * k)
    att = kernels["attention"].spec
    b, h, s, d = 2, 3, 16, 8
    for causal, share in ((False, 1.0), (True, 0.5)):
        p = {"batch": b, "heads": h, "seq": s, "head_dim": d, "causal": causal}
        assert att.flops(p) == 2 * (2 * b * h * s * s * d) * share
        assert att.backward_flops(p) == 5 * (2 * b * h * s * s * d) * share
    pd = kernels["pairwise_distance"].spec
    # squared distances in the GEMM form: the cross terms (2 n m d), then per output
    # |x|^2 + |y|^2 - 2 x.y (3)
    assert pd.flops({"n": 4, "m": 6, "d": 10}) == 2 * 4 * 6 * 10 + 3 * 4 * 6


def test_calibration_arithmetic_takes_each_librarys_best(monkeypatch):
    """copy = 2 bytes / t (read + write), update the same, read = bytes / t, GEMM = 2 n^3 / t,
    and each ceiling is the fastest library's figure. Timings are faked (no clock read)."""
    import sys

    import torch

    from kernbench import ceilings

    monkeypatch.setitem(sys.modules, "jax", None)  # NumPy and torch only (jax: ImportError)
    monkeypatch.setattr(ceilings, "COPY_BYTES", 1 << 16)
    monkeypatch.setattr(ceilings, "GEMM_N", 16)
    # in measure_cpu's order: numpy copy, update, read; torch copy, update, read; numpy GEMM
    # f64, f32; torch GEMM f64, f32, bf16
    times = [4e-3, 2e-3, 1e-3, 2e-3, 4e-3, 0.5e-3, 8e-3, 4e-3, 16e-3, 2e-3, 1e-3]
    queue = list(times)

    def fake_best(fn, repeats=1):
        fn()
        return queue.pop(0)

    monkeypatch.setattr(ceilings, "_best", fake_best)
    got = ceilings.measure_cpu(torch.get_num_threads())
    assert not queue
    nbytes, flops = 1 << 16, 2.0 * 16**3
    np_copy, np_upd, np_read, t_copy, t_upd, t_read, np_f64, np_f32, t_f64, t_f32, t_bf16 = times
    assert got["copy_gbps"] == pytest.approx(2 * nbytes / min(np_copy, t_copy) / 1e9)
    assert got["update_gbps"] == pytest.approx(2 * nbytes / min(np_upd, t_upd) / 1e9)
    assert got["read_gbps"] == pytest.approx(nbytes / min(np_read, t_read) / 1e9)
    assert got["gemm_gflops"] == pytest.approx({
        "float64": flops / min(np_f64, t_f64) / 1e9, "float32": flops / min(np_f32, t_f32) / 1e9,
        "bfloat16": flops / t_bf16 / 1e9})
    assert got["method"]["copy_gbps"]["numpy"] == pytest.approx(2 * nbytes / np_copy / 1e9)
