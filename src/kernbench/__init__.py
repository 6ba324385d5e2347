"""kernbench: benchmark and check ML kernels across NumPy, numba, PyTorch, torch.compile, JAX
and Triton.

Public API: `KernelSpec` and `Tolerance` (to write a spec.py), `load` (a results file as a
pandas DataFrame), `read_run`, `Case`, `discover`."""

from .accuracy import Tolerance
from .case import Case, CaseSettings
from .discovery import discover
from .results import load, read_run
from .spec import KernelSpec

__all__ = ["Case", "CaseSettings", "KernelSpec", "Tolerance", "discover", "load", "read_run"]
__version__ = "0.1.0"
