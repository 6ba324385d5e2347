"""Squared Euclidean distances between two point sets: out[i, j] = ||x_i - y_j||^2 for
x [n, d] and y [m, d] (k-means assignment, k-NN search, RBF kernels, contrastive losses).

The fast formulation is the GEMM form ||x||^2 + ||y||^2 - 2 x.y: one matrix product plus two
norm vectors. It cancels catastrophically when the distances are small next to the norms: for
points clustered around a common centre c far from the origin, the terms are ~||c||^2 while
the result is ~2 d, so the relative error grows like eps * ||c||^2 / d. The parameter `offset`
makes inputs hard: both sets are drawn as c + N(0, 1) with every coordinate of c equal to
+-offset (random signs), so the cancellation factor is ~offset^2 (offset = 0: centred data,
no cancellation). The suites run offset = 0 and offset = 100 (factor ~1e4: a GEMM-form result
is then wrong in its fourth significant digit in float32) as separate cases.

Squared distances are translation-invariant, so the cure for a GEMM form is to subtract a
common centre first (the mean of all points of both sets): then ||x - mu||^2 ~ d and the
cancellation is gone whatever the offset, at the cost of one extra pass over the (small) inputs.

Which form each backend uses, and how it fares on the hard inputs (offset = 100):
- numpy: centred GEMM form (BLAS matmul), clamped at 0: accurate.
- numba: the direct difference form, sum_k (x_ik - y_jk)^2, rows in parallel, differences and
  sum in float64: accurate (exact to float64 before the final rounding), O(n m d) scalar work.
- torch (default file): the library op torch.cdist(x, y) ** 2 with its default compute_mode,
  which switches to the uncentred GEMM form when n > 25 or m > 25. It FAILS the hard case
  (n=2048, m=1024, d=128, eager and compiled alike): float32 rel_l2 ~1.8e-3 (~1.5e4 eps, ~500x
  the tolerance), bfloat16 rel_l2 ~7 (not one correct digit). That is a real property of the
  library op, recorded as `failed` (inaccurate) in the cpu suite's offset = 100 case, not
  hidden. (cdist's direct mode `donot_use_mm_for_euclid_dist` is accurate but has no bfloat16
  kernel on CPU.) On offset = 0 it passes (float32 ~0.7 eps, bfloat16 ~0.6 eps).
- torch manual: centred GEMM form (addmm), float32 inside for bf16: accurate.
- jax: centred GEMM form (precision HIGHEST), float32 inside for bf16: accurate.
- triton: one tiled GEMM-form kernel whose loads subtract the centre mu (computed by torch) on
  the fly, norms accumulated from the same tiles: accurate, one kernel for the n x m output.
The case y = x + tiny noise (near-duplicates) is the other classic failure of the GEMM form,
but only for the few tiny entries, which carry no weight in the relative L2 error of the
matrix; the common-centre case makes every entry hard.

Tolerance: relative L2 of the distance matrix in eps units. A length-d sum of squares rounds
d times, so float32/float64 allow 2 sqrt(d) + 8 eps; bfloat16 (computed in float32, rounded
once) 2 eps. flops counts the GEMM form (2 n m d + 3 n m), the cheapest formulation."""

import math

import numpy as np

from kernbench import KernelSpec, Tolerance

#: rows of x per chunk in the reference, so its n x chunk x d temporaries stay small
_REF_CHUNK_ELEMS = 1 << 22


class PairwiseDistanceSpec(KernelSpec):
    defaults = {"n": 2048, "m": 1024, "d": 128, "offset": 0.0}
    inputs = ("x", "y")

    def check(self, params):
        for key in ("n", "m", "d"):
            if params[key] < 1:
                raise ValueError(f"{key} must be at least 1")
        if not (math.isfinite(params["offset"]) and params["offset"] >= 0.0):
            raise ValueError(f"offset must be finite and >= 0, not {params['offset']}")

    def tolerance(self, params, dtype):
        if dtype in ("bfloat16", "float16"):
            return Tolerance(2.0)
        return Tolerance(2.0 * math.sqrt(params["d"]) + 8.0)

    def make_inputs(self, params, rng):
        n, m, d, offset = params["n"], params["m"], params["d"], params["offset"]
        centre = offset * np.where(rng.random(d) < 0.5, -1.0, 1.0)
        return {"x": centre + rng.standard_normal((n, d)),
                "y": centre + rng.standard_normal((m, d))}

    def reference(self, inputs, params):
        """The definition, sum_k (x_ik - y_jk)^2, in float64 (no GEMM-form cancellation)."""
        x, y = inputs["x"], inputs["y"]
        out = np.empty((x.shape[0], y.shape[0]))
        rows = max(1, _REF_CHUNK_ELEMS // max(1, y.size))
        for i in range(0, x.shape[0], rows):
            diff = x[i:i + rows, None, :] - y[None, :, :]
            np.einsum("ijk,ijk->ij", diff, diff, out=out[i:i + rows])
        return (out,)

    def flops(self, params):
        n, m, d = params["n"], params["m"], params["d"]
        return 2.0 * n * m * d + 3.0 * n * m

    def bytes(self, params, itemsize):
        n, m, d = params["n"], params["m"], params["d"]
        return float(n * d + m * d + n * m) * itemsize


SPEC = PairwiseDistanceSpec()
