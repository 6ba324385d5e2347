"""The contract every algorithm folder fulfils in its spec.py.

A spec says what the algorithm computes, independent of any framework: its parameters, how to
draw inputs (float64 NumPy, seeded), the float64 NumPy reference, the cost model (flops and the
minimum bytes moved) and the tolerance per dtype. Backend files (`<algo>_<family>.py`) only
implement `forward`; everything they are judged by comes from here.

A spec.py defines `SPEC = MySpec()` where `MySpec` subclasses `KernelSpec`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .accuracy import Tolerance
from .errors import UsageError

Params = Mapping[str, Any]


class KernelSpec:
    """Base class for an algorithm's specification. Subclasses set the class attributes and
    implement `make_inputs`, `reference`, `flops` and `bytes`."""

    #: parameter names and their defaults; a suite may set any of them, and only them
    defaults: ClassVar[dict[str, Any]] = {}
    #: names of the array inputs, in the order `forward` takes them
    inputs: ClassVar[tuple[str, ...]] = ()
    #: names of the outputs; `forward` returns one array, or a tuple in this order
    outputs: ClassVar[tuple[str, ...]] = ("out",)
    #: parameters passed to `forward` as keyword arguments (scalars such as eps, causal)
    static_params: ClassVar[tuple[str, ...]] = ()
    #: inputs that stay integer (targets, indices): never cast to the case's dtype
    integer_inputs: ClassVar[tuple[str, ...]] = ()
    #: tolerance per output dtype; float16 falls back to bfloat16's entry scaled by eps
    tolerances: ClassVar[dict[str, Tolerance]] = {
        "float64": Tolerance(64, floor=1e-12),
        "float32": Tolerance(16),
        "float16": Tolerance(4),
        "bfloat16": Tolerance(4),
    }

    #: inputs that receive gradients, in the order backward implementations return them;
    #: empty for an algorithm that is not differentiable (its backward modes are unsupported)
    grad_inputs: ClassVar[tuple[str, ...]] = ()

    name: str = ""  # set by discovery from the folder name

    # -- what subclasses implement -------------------------------------------------------
    def make_inputs(self, params: Params, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def reference(self, inputs: Mapping[str, np.ndarray], params: Params) -> tuple[np.ndarray, ...]:
        """float64 NumPy reference; returns a tuple of arrays in `outputs` order."""
        raise NotImplementedError

    def flops(self, params: Params) -> float:
        raise NotImplementedError

    def bytes(self, params: Params, itemsize: int) -> float:
        """Minimum traffic: every input read once, every output written once."""
        raise NotImplementedError

    def check(self, params: Params) -> None:
        """Raise ValueError naming the parameter if this combination makes no sense."""

    # -- backward (differentiable algorithms) ------------------------------------------------
    def reference_backward(self, inputs: Mapping[str, np.ndarray], params: Params,
                           grad_outputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """float64 analytic gradients of sum_i <outputs_i, grad_outputs_i> with respect to each
        of `grad_inputs`, in that order (a vector-Jacobian product)."""
        raise NotImplementedError

    def make_grad_outputs(self, params: Params, rng: np.random.Generator,
                          outputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """The cotangents fed to backward: standard normal, one per output (a scalar loss gets
        a random scalar, not 1.0, so a gradient off by a constant factor cannot pass)."""
        return tuple(np.asarray(rng.standard_normal(np.shape(o))) for o in outputs)

    def backward_flops(self, params: Params) -> float:
        """Flops of the backward pass alone; by default twice the forward's (the usual ratio)."""
        return 2.0 * self.flops(params)

    def backward_bytes(self, params: Params, itemsize: int) -> float:
        """Minimum traffic of the backward pass alone: by default the forward's inputs and
        outputs read again (saved state, cotangents) and gradients written: about twice."""
        return 2.0 * self.bytes(params, itemsize)

    def grad_tolerance(self, params: Params, dtype: str, name: str) -> Tolerance:
        """Tolerance of the gradient of input `name`; by default the forward's."""
        return self.tolerance(params, dtype)

    @property
    def differentiable(self) -> bool:
        return bool(self.grad_inputs)

    # -- provided ------------------------------------------------------------------------
    def resolve(self, given: Params, where: str = "") -> dict[str, Any]:
        """Fill defaults and validate; a bad parameter is a UsageError naming it."""
        unknown_keys = set(given) - set(self.defaults)
        if unknown_keys:
            from .errors import unknown

            raise unknown(f"{self.name} parameter", sorted(unknown_keys)[0], self.defaults, where)
        params = {**self.defaults, **given}
        for key, value in params.items():
            default = self.defaults[key]
            if isinstance(default, bool) != isinstance(value, bool) or (
                isinstance(default, (int, float)) and not isinstance(value, (int, float))
            ):
                raise UsageError(f"{where}: {self.name} parameter {key}={value!r}: expected "
                                 f"{type(default).__name__}")
            if isinstance(default, int) and not isinstance(default, bool) and isinstance(
                    value, float):
                raise UsageError(f"{where}: {self.name} parameter {key}={value!r}: expected int")
        try:
            self.check(params)
        except ValueError as exc:
            raise UsageError(f"{where}: {self.name} {format_params(params)}: {exc}") from None
        return params

    def tolerance(self, params: Params, dtype: str) -> Tolerance:
        return self.tolerances.get(dtype) or self.tolerances["bfloat16"]

    def static_kwargs(self, params: Params) -> dict[str, Any]:
        return {k: params[k] for k in self.static_params}

    def input_bytes(self, inputs: Mapping[str, np.ndarray], itemsize: int) -> int:
        """Bytes the inputs take once cast to a float format of `itemsize`."""
        return sum(a.size * (a.itemsize if k in self.integer_inputs else itemsize)
                   for k, a in inputs.items())


def format_params(params: Params) -> str:
    """The stable text form used in case ids: `rows=4096,cols=4096`."""
    return ",".join(f"{k}={format_value(v)}" for k, v in params.items())


def format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return str(v)


def validate_spec(spec: object, path: str) -> KernelSpec:
    """Check a loaded SPEC the way pluggy checks a hook: clear error naming the file."""
    if not isinstance(spec, KernelSpec):
        raise UsageError(f"{path}: SPEC must be an instance of kernbench.KernelSpec, "
                         f"got {type(spec).__name__}")
    for method in ("make_inputs", "reference", "flops", "bytes"):
        if getattr(type(spec), method) is getattr(KernelSpec, method):
            raise UsageError(f"{path}: {type(spec).__name__} does not implement {method}()")
    if not spec.inputs:
        raise UsageError(f"{path}: {type(spec).__name__}.inputs is empty")
    missing = [p for p in spec.static_params if p not in spec.defaults]
    if missing:
        raise UsageError(f"{path}: static_params {missing} are not in defaults")
    bad = [g for g in spec.grad_inputs if g not in spec.inputs or g in spec.integer_inputs]
    if bad:
        raise UsageError(f"{path}: grad_inputs {bad} must be floating inputs")
    if spec.grad_inputs and type(spec).reference_backward is KernelSpec.reference_backward:
        raise UsageError(f"{path}: {type(spec).__name__} has grad_inputs but does not implement "
                         f"reference_backward()")
    return spec
