"""Each spec's float64 reference against an independent implementation, on fresh inputs."""

import numpy as np
import pytest
import scipy.special

RNG = np.random.default_rng(2024)


def test_softmax_reference_matches_scipy(kernels):
    spec = kernels["softmax"].spec
    params = spec.resolve({"rows": 33, "cols": 77})
    x = spec.make_inputs(params, RNG)
    (ref,) = spec.reference(x, params)
    np.testing.assert_allclose(ref, scipy.special.softmax(x["x"], axis=-1), rtol=1e-13)
    big = {"x": x["x"] * 1000}  # stable for huge logits
    (ref_big,) = spec.reference(big, params)
    assert np.isfinite(ref_big).all()
    np.testing.assert_allclose(ref_big.sum(-1), 1.0, rtol=1e-12)


def test_matmul_reference_matches_einsum(kernels):
    spec = kernels["matmul"].spec
    params = spec.resolve({"m": 17, "n": 9, "k": 31})
    x = spec.make_inputs(params, RNG)
    (ref,) = spec.reference(x, params)
    np.testing.assert_allclose(ref, np.einsum("ik,kj->ij", x["a"], x["b"]), rtol=1e-12)


@pytest.mark.parametrize("name", ["softmax", "matmul"])
def test_inputs_are_seeded(kernels, name):
    spec = kernels[name].spec
    params = spec.resolve({})
    a = spec.make_inputs(params, np.random.default_rng(1))
    b = spec.make_inputs(params, np.random.default_rng(1))
    c = spec.make_inputs(params, np.random.default_rng(2))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.array_equal(a[k], c[k])
        assert a[k].dtype in (np.float64, np.int64)
