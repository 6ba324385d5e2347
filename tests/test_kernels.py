"""Every kernel x backend (variants included) x dtype of the smoke suite, on its small shapes,
in-process: each runnable case must be ok and within tolerance; each one that cannot run must
say why. Triton runs under its interpreter; numba-cuda in numba's CUDA simulator, on the tiny
shapes of suites/simulated.toml (the simulator is far too slow for the smoke shapes). A missing
backend fails test_every_family_available rather than silently shrinking this sweep."""

import numpy as np
import pytest

from kernbench.backends import FAMILIES, backends_for_source, family_of
from kernbench.discovery import discover
from kernbench.suite import load_suite

from .conftest import FAST, ROOT

SUITE = load_suite(ROOT / "suites" / "smoke.toml", discover([]))
SIMULATED = load_suite(ROOT / "suites" / "simulated.toml", discover([]))
CASES = {p.case.id: p for p in (*SUITE.cases, *SIMULATED.cases)}


def test_every_family_available():
    missing = {name: fam.missing() for name, fam in FAMILIES.items()
               if fam.runs_on_cpu and fam.missing()}
    assert not missing, f"backends missing from the test environment: {missing}"


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.runs_on_cpu])
def test_to_backend_never_views_the_draw(name, dtype):
    """The worker converts the timed copies from the very draw the first call saw
    (PreparedCase.take_inputs_a): a backend array that viewed the draw would let an in-place
    kernel change it under them. Changing the draw must leave the backend's array alone.
    int64: integer inputs (labels) keep their own dtype, whatever the case's."""
    family = FAMILIES[name]
    family.setup(2)
    draw = np.arange(12.0).reshape(3, 4)
    if dtype == "int64":
        draw, dtype = draw.astype(np.int64), "float32"
    converted = family.to_backend(draw, dtype, "cpu")
    draw[...] = -1
    np.testing.assert_array_equal(family.to_numpy(converted)[0], np.arange(12.0).reshape(3, 4))


def test_smoke_covers_every_kernel_and_implementation(kernels):
    for name, kernel in kernels.items():
        planned = {(p.case.backend, p.impl.path) for p in SUITE.cases if p.case.kernel == name}
        assert planned, f"{name} is not in smoke.toml"
        planned |= {(p.case.backend, p.impl.path) for p in SIMULATED.cases
                    if p.case.kernel == name}
        for impl in kernel.implementations:
            for backend in backends_for_source(impl.family):
                family = family_of(backend)
                if not family.runs_on_cpu:
                    continue
                where = "simulated.toml" if family.cpu_simulator else "smoke.toml"
                assert (backend, impl.path) in planned, f"{impl.path} ({backend}) not in {where}"


#: hand-written files without a backward (their backward cases are `unsupported`, and must be)
NO_BACKWARD = {"matmul_numba_loops.py", "selective_scan_triton.py"}


def test_no_backward_list_is_true(kernels):
    """NO_BACKWARD names exactly the hand-written files that lack forward_train/backward."""
    autodiff = {"torch", "jax"}
    lacking = {impl.path.name for kernel in kernels.values() if kernel.spec.grad_inputs
               for impl in kernel.implementations if impl.family not in autodiff
               and "def forward_train" not in impl.path.read_text()}
    assert lacking == NO_BACKWARD


def test_smoke_plans_both_dtypes_and_every_mode(kernels):
    """Every (kernel, backend file) in smoke.toml runs in float32 and bfloat16, and in the
    backward modes wherever the spec has a gradient (the README promises this)."""
    for name, kernel in kernels.items():
        expected = {"forward", "backward", "forward_backward"} if kernel.spec.grad_inputs \
            else {"forward"}
        pairs = {(p.case.backend, p.impl.path) for p in SUITE.cases if p.case.kernel == name}
        for backend, path in pairs:
            mine = [p.case for p in SUITE.cases
                    if (p.case.kernel, p.case.backend, p.impl.path) == (name, backend, path)]
            assert {c.dtype for c in mine} >= {"float32", "bfloat16"}, (name, backend)
            assert {c.mode for c in mine} == expected, (name, backend)


def test_simulated_suite_holds_only_simulator_backends():
    for p in SIMULATED.cases:
        assert family_of(p.case.backend).cpu_simulator, p.case.id
    for p in SUITE.cases:
        assert not family_of(p.case.backend).cpu_simulator, f"{p.case.id}: far too slow here"


@pytest.mark.parametrize("case_id", sorted(CASES), ids=str)  # full ids: `-k adamw_step` works
def test_case_is_ok_and_accurate(case_id, worker):
    p = CASES[case_id]
    record = worker.execute(p.case, FAST, str(p.kernel.folder), str(p.impl.path))
    if record["status"] == "unsupported":
        assert record["reason"], "unsupported without a reason"
        no_low_precision = (p.case.dtype in ("bfloat16", "float16")
                            and p.case.backend in ("numpy", "numba"))
        # only the files listed as having no backward may say so: a file that lost (or
        # misspelt) forward_train/backward must fail here, not pass as unsupported
        no_backward = (p.case.mode != "forward" and p.impl.path.name in NO_BACKWARD
                       and "no hand-written backward" in record["reason"])
        assert no_low_precision or no_backward, record["reason"]
        return
    assert record["status"] == "ok", record.get("reason") or record
    # interpreter and simulator times are never ranked or gated: the flag must be on them
    interpreted = family_of(p.case.backend).name in ("triton", "numba_cuda")
    assert ("interpreted" in record["flags"]) == interpreted, record["flags"]
    acc = record["accuracy"]
    assert acc["passed"] and acc["nonfinite"] == 0
    assert acc["rel_l2"] <= acc["tolerance"]
    assert record["time"]["n_samples"] >= 2 and record["time"]["median_s"] > 0
    assert record["memory"]["method"]


#: Issue 4: these Triton implementations must have backward kernels
TRITON_BACKWARD = ("softmax", "matmul", "rms_norm", "swiglu", "cross_entropy", "attention")


@pytest.mark.parametrize("name", TRITON_BACKWARD)
def test_required_triton_backward_exists_and_is_in_smoke(kernels, name):
    impl = next(i for i in kernels[name].implementations if i.family == "triton" and
                not i.variant)
    source = impl.path.read_text()
    assert "def forward_train(" in source and "def backward(" in source
    modes = {p.case.mode for p in SUITE.cases if p.case.kernel == name
             and p.case.backend == "triton"}
    assert {"backward", "forward_backward"} <= modes
