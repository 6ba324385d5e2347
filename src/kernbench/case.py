"""A case: one (kernel, backend[:variant], device, dtype, mode, params) to measure.

Frozen, like torch.utils.benchmark's TaskSpec: its `id` is stable across runs and is the key that
joins a run with its baseline, so it holds every field that tells two cases apart. How long to
measure it (budget, timeout) is not part of its identity: that lives in `CaseSettings`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .spec import format_params

#: forward: the output from the inputs. backward: the gradients alone, given the state a
#: forward pass saved. forward_backward: both, as one training step pays them.
MODES = ("forward", "backward", "forward_backward")


@dataclass(frozen=True)
class Case:
    kernel: str
    backend: str  # torch_compile
    variant: str  # "" for the default implementation
    device: str
    dtype: str
    mode: str
    params: tuple[tuple[str, Any], ...]

    @property
    def label(self) -> str:
        """The backend as shown and as it appears in the id: `torch_eager:sdpa`."""
        return f"{self.backend}:{self.variant}" if self.variant else self.backend

    @property
    def id(self) -> str:
        return (f"{self.kernel}/{self.label}/{self.device}/{self.dtype}/{self.mode}/"
                f"{format_params(dict(self.params))}")

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["params"] = dict(self.params)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Case:
        return cls(d["kernel"], d["backend"], d.get("variant", ""), d["device"], d["dtype"],
                   d.get("mode", "forward"), tuple(d["params"].items()))


@dataclass(frozen=True)
class CaseSettings:
    """How to measure a case: set by the suite, per kernel where overridden."""

    budget_s: float = 1.0  # time spent on timed samples, after warm-up
    min_samples: int = 5
    max_samples: int = 500
    min_block_s: float = 2e-3  # a timed block lasts at least this long
    warmup_s: float = 0.05
    timeout_s: float = 600.0
    warm_cache: bool = False  # True: do not rotate inputs; time from a warm cache
    seed: int = 0
    memory: bool = True
    l2_flush: bool = True  # GPUs: zero a buffer larger than L2 before every timed call
    cuda_graph: bool = False  # GPUs: time a CUDA-graph replay of each block (launch-bound kernels)

    def to_dict(self) -> dict:
        return asdict(self)
