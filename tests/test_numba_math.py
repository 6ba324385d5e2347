"""kernbench.numba_math: the vectorisable float32 exp and log1p that numba kernels use are
accurate to about one ulp over their whole domain, and other dtypes fall back to libm."""

import math

import numpy as np
from numba import njit

from kernbench.numba_math import fast_erfc, fast_exp, fast_log1p_unit, row_max


@njit(cache=False)
def _map_exp(x, out):
    for i in range(x.size):
        out[i] = fast_exp(x[i])


@njit(cache=False)
def _map_log1p(x, out):
    for i in range(x.size):
        out[i] = fast_log1p_unit(x[i])


def ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in units of the float32 spacing at the exact value."""
    return np.abs(got.astype(np.float64) - exact) / np.spacing(
        np.abs(exact).astype(np.float32)).astype(np.float64)


def test_exp_float32_within_about_one_ulp_everywhere():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-87.3, 88.7, 1 << 20), np.linspace(-1, 1, 100001),
                        rng.uniform(-1e-6, 1e-6, 1000)]).astype(np.float32)
    out = np.empty_like(x)
    _map_exp(x, out)
    assert ulps(out, np.exp(x.astype(np.float64))).max() <= 1.05


def test_exp_float32_limits():
    x = np.array([0.0, -0.0, -88.0, -100.0, -np.inf, 89.0, 1000.0, np.inf, 88.72], np.float32)
    out = np.empty_like(x)
    _map_exp(x, out)
    assert out[0] == 1.0 and out[1] == 1.0
    assert (out[2:5] == 0.0).all()  # below FLT_MIN: flushed to zero, never garbage
    assert np.isposinf(out[5:8]).all()
    assert np.isfinite(out[8]) and ulps(out[8:], np.exp(np.float64(out.dtype.type(88.72)))) < 1.05


@njit(cache=False)
def _map_erfc(x, out):
    for i in range(x.size):
        out[i] = fast_erfc(x[i])


def test_erfc_float32_within_a_few_ulp_wherever_it_is_a_normal_float():
    """Both signs (erfc(-x) = 2 - erfc(x)), the tiny arguments and the far tail: relative
    accuracy all the way to FLT_MIN (measured 2.23 ulp; the fit's own error is 1.2e-7)."""
    x = np.concatenate([np.linspace(-10, 10, 200001), np.linspace(-1e-3, 1e-3, 2001),
                        [0.0, 9.2, 12.0, 1e4, -1e4]]).astype(np.float32)
    out = np.empty_like(x)
    _map_erfc(x, out)
    exact = np.array([math.erfc(float(v)) for v in x])
    normal = exact > np.finfo(np.float32).tiny
    assert ulps(out[normal], exact[normal]).max() <= 2.5
    assert (out[~normal] >= 0).all() and (out[~normal] < 1e-37).all()  # never garbage
    assert out[-1] == 2.0 and out[np.flatnonzero(x == 0.0)[0]] == 1.0


def test_log1p_unit_float32_within_two_ulp_including_tiny_arguments():
    x = np.concatenate([np.linspace(0, 1, 200001), np.geomspace(1e-38, 1e-3, 10000)]
                       ).astype(np.float32)
    out = np.empty_like(x)
    _map_log1p(x, out)
    exact = np.log1p(x.astype(np.float64))
    nonzero = exact > 0
    assert ulps(out[nonzero], exact[nonzero]).max() <= 2.0  # measured 1.84 (libm: 0.5)
    assert out[0] == 0.0


def test_float64_falls_back_to_libm():
    x = np.linspace(-700, 700, 10001)
    out = np.empty_like(x)
    _map_exp(x, out)
    np.testing.assert_allclose(out, np.exp(x), rtol=4e-16)  # libm, not NumPy: 1 ulp apart
    u = np.linspace(0, 1, 1001)
    _map_log1p(u, out[:1001])
    np.testing.assert_allclose(out[:1001], np.log1p(u), rtol=4e-16)


@njit(cache=False)
def _row_maxes(x, out):
    for i in range(x.shape[0]):
        out[i] = row_max(x[i])


def test_row_max_every_length_and_position():
    rng = np.random.default_rng(3)
    for n in (1, 2, 15, 16, 17, 31, 33, 100, 4099):
        x = rng.standard_normal((n + 2, n)).astype(np.float32) - 50.0
        for i in range(n + 2):  # the maximum in every lane, the tail and the first slot
            x[i, i % n] = 7.0 + i
        out = np.empty(n + 2, np.float32)
        _row_maxes(x, out)
        np.testing.assert_array_equal(out, x.max(axis=1))
