"""Derived figures for a case record: GFLOP/s, GB/s, arithmetic intensity, and the fraction of
this machine's ceiling (the roofline bound at the case's intensity).

A case above its ceiling by more than its own noise is flagged `suspect`: it almost always means
the clock was read before the work finished (a missing synchronisation)."""

from __future__ import annotations

from .dtypes import get_format
from .spec import KernelSpec

#: A case may exceed the ceiling by this much plus its own relative spread before it is suspect:
#: ceilings are themselves measured, with a few percent of noise.
CEILING_SLACK = 0.10


def gemm_roof(gemm_gflops: dict, dtype: str) -> tuple[float | None, str]:
    """The compute roof for `dtype` from a device's measured GEMM rates, and how it was got.
    float32 is the better of the plain FP32 rate and a third of the TF32 rate where TF32 was
    measured (a GPU): a float32-accurate GEMM can run on tensor cores as 3xTF32 (three TF32
    products per float32 one: CUTLASS's fast-FP32 kernels, which SDPA's float32 path uses), on
    an H100 by its data sheet 2-2.5 times the FP32 rate, so a kernel doing so is not beyond
    its roof."""
    plain = gemm_gflops.get(dtype)
    tf32 = gemm_gflops.get("tf32")
    if dtype == "float32" and plain and tf32 and tf32 / 3 > plain:
        return tf32 / 3, "3xTF32"
    return plain, ""


def ceiling_for(ceilings: dict, device: str, dtype: str) -> tuple[float | None, float | None]:
    """(peak GFLOP/s, peak GB/s) for a device and dtype from the run header's ceilings. The
    memory roof is the better of copy and in-place update bandwidth: both count bytes read +
    written, and the update figure is the larger where a copy pays write-allocate reads of its
    destination that the count does not see (kernbench.ceilings). Kernels writing new buffers
    reach past the copy figure too: on the 2-core VM cross-entropy's numba backward moved
    61 GB/s over 262 MB against a copy figure of 44 and an update figure of 65."""
    if device == "cuda":
        device = "cuda:0"
    dev = (ceilings or {}).get(device) or {}
    gemm, _ = gemm_roof(dev.get("gemm_gflops") or {}, dtype)
    return gemm, memory_roof(dev)


def memory_roof(device_ceilings: dict) -> float | None:
    """GB/s of counted read + write traffic: the better of copy and in-place update."""
    rates = [v for v in (device_ceilings.get("copy_gbps"), device_ceilings.get("update_gbps"))
             if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]
    return max(rates) if rates else None


def derive(record: dict, spec: KernelSpec, ceilings: dict) -> dict:
    """Add gflops, gbps, intensity and roofline_fraction to an ok record (in place)."""
    t = record.get("time")
    if not t or not t.get("median_s"):
        return record
    params = record["params"]
    itemsize = get_format(record["dtype"]).itemsize
    mode = record.get("mode", "forward")
    flops = float(spec.flops(params)) if mode != "backward" else 0.0
    nbytes = float(spec.bytes(params, itemsize)) if mode != "backward" else 0.0
    if mode in ("backward", "forward_backward"):
        flops += float(spec.backward_flops(params))
        nbytes += float(spec.backward_bytes(params, itemsize))
    median = t["median_s"]
    record["flop_count"] = flops
    record["byte_count"] = nbytes
    record["gflops"] = flops / median / 1e9
    record["gbps"] = nbytes / median / 1e9
    record["intensity"] = flops / nbytes if nbytes else None
    peak_gflops, peak_gbps = ceiling_for(ceilings, record["device"], record["dtype"])
    if peak_gbps and nbytes:
        bound = peak_gbps * record["intensity"] if peak_gflops is None else min(
            peak_gflops, peak_gbps * record["intensity"])
        record["roofline_gflops"] = bound
        if flops and bound:
            record["roofline_fraction"] = record["gflops"] / bound
        else:  # no flops (a copy-like kernel): compare bandwidth directly
            record["roofline_fraction"] = record["gbps"] / peak_gbps
        spread = (t.get("iqr_s") or 0.0) / median
        if record["roofline_fraction"] > 1.0 + CEILING_SLACK + spread:
            flags = record.setdefault("flags", [])
            if "suspect" not in flags:
                flags.append("suspect")
    return record
