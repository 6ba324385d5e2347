"""The floating-point formats kernbench knows: names, machine epsilon, ULP spacing.

NumPy has no bfloat16, so the arithmetic facts of each format live here rather than in
`np.finfo`. Every tolerance and every ULP figure in the results derives from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import unknown


@dataclass(frozen=True)
class FloatFormat:
    name: str
    mantissa_bits: int  # explicit fraction bits (float32: 23)
    min_exponent: int  # exponent of the smallest normal number (float32: -126)
    itemsize: int

    @property
    def eps(self) -> float:
        """Machine epsilon: the gap between 1.0 and the next representable number."""
        return 2.0 ** -self.mantissa_bits

    def ulp(self, x: np.ndarray) -> np.ndarray:
        """Spacing of this format at |x| (subnormal spacing below the normal range)."""
        ax = np.abs(np.asarray(x, dtype=np.float64))
        # frexp splits ax = m * 2**e with m in [0.5, 1), so ax's binary exponent is e - 1,
        # exactly: floor(log2(ax)) rounds up to the next power just below one (2**k - 2**(k-53)
        # read as exponent k, an ULP twice too large) and costs a transcendental per element
        _, e = np.frexp(ax)
        exp = np.maximum(np.where(ax > 0, e - 1, self.min_exponent), self.min_exponent)
        return np.ldexp(1.0, exp - self.mantissa_bits)


FORMATS: dict[str, FloatFormat] = {
    f.name: f
    for f in (
        FloatFormat("float64", 52, -1022, 8),
        FloatFormat("float32", 23, -126, 4),
        FloatFormat("float16", 10, -14, 2),
        FloatFormat("bfloat16", 7, -126, 2),
    )
}

FLOAT_DTYPES = tuple(FORMATS)


def get_format(name: str) -> FloatFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise unknown("dtype", name, FORMATS) from None


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """Round float64 values to `dtype` and return them as float64 (round-to-nearest-even).

    Used to compute the reference from the inputs the kernel actually saw, so the accuracy
    figures measure the kernel's arithmetic and not the rounding of its inputs.
    """
    x = np.asarray(x, dtype=np.float64)
    if dtype == "float64":
        return x.copy()
    if dtype in ("float32", "float16"):
        return x.astype(dtype).astype(np.float64)
    if dtype == "bfloat16":
        bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
        rounding = ((bits >> 16) & 1) + 0x7FFF
        out = ((bits + rounding) >> 16 << 16).astype(np.uint32).view(np.float32)
        nan = np.isnan(x)
        return np.where(nan, np.nan, out.astype(np.float64))
    raise unknown("dtype", dtype, FORMATS)
