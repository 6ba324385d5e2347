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


def run_backward(tmp_path, name, src, spec=SPEC, modes=("backward", "forward_backward"),
                 min_samples=2):
    write_kernel(tmp_path / "k", name, spec, {"numpy": src})
    suite = tmp_path / "s.toml"
    suite.write_text(f'[suite]\nbackends = ["numpy"]\nmodes = {list(modes)!r}\n'
                     f'budget_s = 0.0\nmin_samples = {min_samples}\nwarmup_s = 0.0\n'
                     f'min_block_s = 0.0001\n'
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


@pytest.mark.parametrize("mode", ["backward", "forward_backward"])
def test_every_input_copy_has_its_own_cotangent(tmp_path, mode):
    """The timed loop rotates input copies so that no call finds its data in cache: that must
    include the cotangents (a shared one stayed in cache, and RoPE's backward, which reads
    little else, was timed faster than the copy bandwidth allows)."""
    log = tmp_path / "addresses.txt"
    src = GOOD + (f"\n_b = backward\ndef backward(y, g):\n"
                  f"    with open({str(log)!r}, 'a') as f:\n"
                  f"        f.write(str(g.__array_interface__['data'][0]) + '\\n')\n"
                  f"    return _b(y, g)\n")
    [case] = run_backward(tmp_path, "cotcopies", src, modes=(mode,), min_samples=100)
    assert case["status"] == "ok", case
    assert 2 < case["input_copies"] < case["time"]["n_samples"]
    # the timed calls cycle through every copy's cotangent (accuracy and memory add a few)
    assert len(set(log.read_text().split())) >= case["input_copies"]


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


def test_jax_forward_backward_keeps_the_forward_work():
    """jax_jit's training step returns the forward's outputs with the gradients, so XLA cannot
    drop forward work the gradients do not need (a matmul's product: the step was timed as
    the backward alone and flagged suspect)."""
    import jax.numpy as jnp

    from kernbench.backends.jax_family import VjpTrainer

    m, k, n = 64, 32, 16
    trainer = VjpTrainer(lambda a, b: a @ b, {}, [0, 1], 2)
    a, b, g = jnp.ones((m, k)), jnp.ones((k, n)), jnp.full((m, n), 0.5)
    cost = trainer._fb.lower((a, b), g).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    assert cost["flops"] == pytest.approx(3 * 2 * m * n * k)  # forward, d_a and d_b
    grads = trainer.forward_backward(a, b, g)
    assert [x.shape for x in grads] == [(m, k), (k, n)]
    assert float(grads[0][0, 0]) == pytest.approx(0.5 * n)
