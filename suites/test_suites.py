"""One pytest-benchmark test per suite case (see conftest.py here for how to run them)."""

from __future__ import annotations

import pytest

from kernbench.backends import family_of


def test_case(kernbench_case, kernbench_worker, benchmark) -> None:
    """Time the case's steady-state call; its first output must be within tolerance."""
    p = kernbench_case
    if p.case.mode != "forward":  # this plugin times forward calls only
        pytest.skip(f"{p.case.mode} mode: run it with `kernbench run` (the plugin times forward "
                    "calls only)")
    family = family_of(p.case.backend)
    reason = family.missing() or family.unsupported(p.case.backend, p.case.device, p.case.dtype)
    if reason:
        pytest.skip(reason)
    prepared = kernbench_worker.prepare(p.case, p.settings, str(p.kernel.folder), str(p.impl.path))
    errors, _ = kernbench_worker._errors(prepared.spec, prepared.params, prepared.seen_a,
                                         prepared.first_out, family, p.case.dtype)
    prepared.first_out = None
    bad = [f"{e.name}: {e.reason}" for e in errors if not e.passed]
    assert not bad, f"{p.case.id}: inaccurate: {'; '.join(bad)}"
    benchmark.group = p.case.kernel
    benchmark.extra_info.update({"kernbench_id": p.case.id, "kernel": p.case.kernel,
                                 "backend": p.case.label, "dtype": p.case.dtype,
                                 "device": p.case.device, "params": p.case.param_dict,
                                 "flags": family.flags(p.case.backend, p.case.device)})
    benchmark(prepared.call, *prepared.args_a)
