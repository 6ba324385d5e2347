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


def ceiling_key(device: str) -> str:
    """The run header's ceilings key for a case's device: `cuda` is the current GPU, cuda:0."""
    return "cuda:0" if device == "cuda" else device


def ceiling_for(ceilings: dict, device: str, dtype: str) -> tuple[float | None, float | None]:
    """(peak GFLOP/s, peak GB/s) for a device and dtype from the run header's ceilings. The
    memory roof is the better of copy and in-place update bandwidth: both count bytes read +
    written, and the update figure is the larger where a copy pays write-allocate reads of its
    destination that the count does not see (kernbench.ceilings). Kernels writing new buffers
    reach past the copy figure too: on the 2-core VM cross-entropy's numba backward moved
    61 GB/s over 262 MB against a copy figure of 44 and an update figure of 65."""
    dev = (ceilings or {}).get(ceiling_key(device)) or {}
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
    bound, fraction, _ = _roofline(record, ceilings)
    if fraction is not None:
        record["roofline_gflops"] = bound
        record["roofline_fraction"] = fraction
        if _above(record, fraction):
            add_flag(record, "suspect")
    return record


def _roofline(record: dict, ceilings: dict) -> tuple[float | None, float | None, bool]:
    """(the roofline bound in GFLOP/s, the case's fraction of it, whether memory bounds it);
    (None, None, False) without a memory roof or a byte count."""
    flops, nbytes = record.get("flop_count") or 0.0, record.get("byte_count") or 0.0
    peak_gflops, peak_gbps = ceiling_for(ceilings, record["device"], record["dtype"])
    if not (peak_gbps and nbytes):
        return None, None, False
    by_memory = peak_gbps * record["intensity"]
    bound = by_memory if peak_gflops is None else min(peak_gflops, by_memory)
    if flops and bound:
        return bound, record["gflops"] / bound, bound == by_memory
    return bound, record["gbps"] / peak_gbps, True  # no flops (a copy): bandwidth directly


def _above(record: dict, fraction: float) -> bool:
    """Above the roof by more than the ceilings' own noise and the case's spread."""
    t = record["time"]
    return fraction > 1.0 + CEILING_SLACK + (t.get("iqr_s") or 0.0) / t["median_s"]


def add_flag(record: dict, flag: str) -> None:
    """Add `flag` to the record's flags once."""
    flags = record.setdefault("flags", [])
    if flag not in flags:
        flags.append(flag)


def needs_roof_recheck(record: dict, ceilings: dict) -> bool:
    """A CPU case flagged suspect against a memory roof: the one kind of suspect a second look
    at the machine can explain. A shared VM's memory bandwidth can rise within a run (1.8x in
    one cpu.toml run here), past the roof measured as the run began."""
    return ("suspect" in (record.get("flags") or []) and record.get("device") == "cpu"
            and _roofline(record, ceilings)[2])


def rejudge(record: dict, ceilings: dict, memory_now: dict) -> dict:
    """Judge a suspect case again against the better of the run's memory roof and
    `memory_now` (copy and update GB/s re-measured right after the case; `ceilings.
    measure_cpu_memory`). Within it (slack and spread as in `derive`), `suspect` becomes
    `roof_rose`: ranked, and its fraction stays against the run's roof, like every other
    case's. Still
    above it, the case stays suspect. The re-measurement is recorded as `roof_recheck`."""
    if "suspect" not in (record.get("flags") or []):
        return record
    record["roof_recheck"] = {k: memory_now[k] for k in ("copy_gbps", "update_gbps", "measured")
                              if k in memory_now}
    device = record["device"]
    run_roof = (ceilings or {}).get(device) or {}
    better = {**run_roof, **{k: max(v for v in (run_roof.get(k), memory_now.get(k))
                                    if isinstance(v, (int, float)))
                             for k in ("copy_gbps", "update_gbps")
                             if isinstance(memory_now.get(k), (int, float))}}
    _, fraction, _ = _roofline(record, {**ceilings, device: better})
    if fraction is not None and not _above(record, fraction):
        record["flags"] = [f for f in record["flags"] if f != "suspect"]
        add_flag(record, "roof_rose")
    return record
