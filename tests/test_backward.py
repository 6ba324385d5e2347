"""Backward modes: every spec's analytic float64 gradient agrees with central finite
differences, a gradient off by a factor is reported failing, and what a backend cannot
differentiate is `unsupported` with the reason."""

import numpy as np
import pytest

from kernbench.cli import main
from kernbench.discovery import discover
from kernbench.results import read_run
from kernbench.suite import load_suite

from .conftest import ROOT, write_kernel

KERNELS = discover([])
DIFFERENTIABLE = sorted(k for k, v in KERNELS.items() if v.spec.differentiable)
SMOKE = load_suite(ROOT / "suites" / "smoke.toml", KERNELS)


def small_params(name):
    """The first smoke-suite shape of the kernel (small enough for finite differences)."""
    for p in SMOKE.cases:
        if p.case.kernel == name:
            return p.case.param_dict
    return KERNELS[name].spec.resolve({})


def loss(spec, inputs, params, cot):
    return sum(float(np.sum(o * g)) for o, g in zip(spec.reference(inputs, params), cot))


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_reference_gradient_matches_finite_differences(name):
    spec = KERNELS[name].spec
    params = small_params(name)
    rng = np.random.default_rng(11)
    inputs = spec.make_inputs(params, rng)
    cot = spec.make_grad_outputs(params, rng, spec.reference(inputs, params))
    grads = spec.reference_backward(inputs, params, cot)
    assert len(grads) == len(spec.grad_inputs)
    for gname, grad in zip(spec.grad_inputs, grads):
        x = inputs[gname]
        assert grad.shape == x.shape, gname
        scale = max(float(np.abs(x).max()), 1.0)
        h = 1e-6 * scale
        for _ in range(3):  # directional derivatives along random directions
            v = rng.standard_normal(x.shape)
            plus = {**inputs, gname: x + h * v}
            minus = {**inputs, gname: x - h * v}
            fd = (loss(spec, plus, params, cot) - loss(spec, minus, params, cot)) / (2 * h)
            exact = float(np.sum(grad * v))
            assert fd == pytest.approx(exact, rel=1e-5, abs=1e-7 * np.abs(grad).sum()), gname
        flat = np.argsort(-np.abs(grad).ravel())[:3]  # and the largest entries one by one
        for idx in flat:
            e = np.zeros(x.size)
            e[idx] = 1.0
            e = e.reshape(x.shape)
            fd = (loss(spec, {**inputs, gname: x + h * e}, params, cot)
                  - loss(spec, {**inputs, gname: x - h * e}, params, cot)) / (2 * h)
            assert fd == pytest.approx(grad.ravel()[idx], rel=1e-5, abs=1e-8 * scale), gname


SPEC = (ROOT / "kernels" / "softmax" / "spec.py").read_text()
GOOD = (ROOT / "kernels" / "softmax" / "softmax_numpy.py").read_text()


def run_backward(tmp_path, name, src, spec=SPEC):
    write_kernel(tmp_path / "k", name, spec, {"numpy": src})
    suite = tmp_path / "s.toml"
    suite.write_text(f'[suite]\nbackends = ["numpy"]\nmodes = ["backward", "forward_backward"]\n'
                     f'budget_s = 0.0\nmin_samples = 2\nwarmup_s = 0.0\nmin_block_s = 0.0001\n'
                     f'[kernels.{name}]\nparams = {{ rows = [4], cols = [16] }}\n')
    out = tmp_path / "r.jsonl"
    assert main(["run", str(suite), "--kernels", str(tmp_path / "k"), "-o", str(out),
                 "--isolate", "none", "--calibrate", "skip", "--no-progress"]) == 0
    return read_run(out).cases


@pytest.mark.parametrize("factor", [1.001, 0.5, -1.0])
def test_gradient_off_by_a_factor_fails(tmp_path, factor):
    src = GOOD + f"\n_b = backward\ndef backward(y, g):\n    return (_b(y, g)[0] * {factor},)\n"
    cases = run_backward(tmp_path, "scaledgrad", src)
    assert len(cases) == 2
    for case in cases:
        assert case["status"] == "failed", case
        assert case["reason"].startswith("inaccurate: gradient d_x")


def test_correct_hand_written_backward_passes(tmp_path):
    cases = run_backward(tmp_path, "goodgrad", GOOD)
    assert [c["status"] for c in cases] == ["ok", "ok"]
    assert all(c["memory"]["saved_bytes"] == 4 * 16 * 4 for c in cases)  # saves y only


def test_missing_backward_is_unsupported(tmp_path):
    src = "import numpy as np\n" + GOOD.split("def forward_train")[0]
    cases = run_backward(tmp_path, "nograd", src)
    assert all(c["status"] == "unsupported" for c in cases)
    assert "no hand-written backward" in cases[0]["reason"]


def test_non_differentiable_spec_is_unsupported(tmp_path):
    spec = SPEC.replace('    grad_inputs = ("x",)\n', "")
    cases = run_backward(tmp_path, "nodiff", GOOD, spec=spec)
    assert all(c["status"] == "unsupported" for c in cases)
    assert "not differentiable" in cases[0]["reason"]
