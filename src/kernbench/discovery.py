"""Finding algorithms and their backend files, by convention, with no registry.

    kernels/<algo>/spec.py                 SPEC = <KernelSpec subclass>()
    kernels/<algo>/<algo>_<family>.py      def forward(...): the default implementation
    kernels/<algo>/<algo>_<family>_<v>.py  a labelled variant `v` (backend shown as `backend:v`)

Folders come from ./kernels (or the repository's kernels/), then `KERNBENCH_KERNELS`
(os.pathsep-separated) and `--kernels DIR`; a later folder's algorithm of the same name wins.
spec.py is imported here (it needs only NumPy); backend files are only parsed, never imported,
in this process: importing them would import their framework. The worker imports them.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .backends import SOURCES
from .errors import UsageError
from .spec import KernelSpec, validate_spec

ENV_VAR = "KERNBENCH_KERNELS"


@dataclass(frozen=True)
class Implementation:
    """One backend file: family, optional variant label, and its path."""

    family: str
    variant: str
    path: Path

    def label(self, backend: str) -> str:
        return f"{backend}:{self.variant}" if self.variant else backend


@dataclass(frozen=True)
class Kernel:
    name: str
    folder: Path
    spec: KernelSpec = field(compare=False)
    implementations: tuple[Implementation, ...]

    def code_hash(self) -> str:
        """Hash of the folder's sources: a results file records which code it measured."""
        h = hashlib.sha256()
        for p in sorted(self.folder.glob("*.py")):
            h.update(p.name.encode())
            h.update(p.read_bytes())
        return h.hexdigest()[:16]


def default_dirs() -> list[Path]:
    cwd = Path.cwd() / "kernels"
    if cwd.is_dir():
        return [cwd]
    repo = Path(__file__).resolve().parents[2] / "kernels"
    return [repo] if repo.is_dir() else []


def kernel_dirs(extra: list[str] | None = None) -> list[Path]:
    dirs = default_dirs()
    env = os.environ.get(ENV_VAR, "")
    for raw in [*(p for p in env.split(os.pathsep) if p), *(extra or [])]:
        path = Path(raw).expanduser()
        if not path.is_dir():
            raise UsageError(f"--kernels/{ENV_VAR}: {raw}: no such directory")
        dirs.append(path.resolve())
    return dirs


def discover(extra: list[str] | None = None) -> dict[str, Kernel]:
    """All algorithms found, by name. A malformed folder raises a UsageError naming the file."""
    found: dict[str, Kernel] = {}
    for root in kernel_dirs(extra):
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if folder.name.startswith((".", "_")) or not (folder / "spec.py").exists():
                continue
            found[folder.name] = load_kernel(folder)
    return found


def load_kernel(folder: Path) -> Kernel:
    name = folder.name
    spec_path = folder / "spec.py"
    module = import_file(spec_path, f"kernbench_kernels.{_safe(folder)}.spec")
    if not hasattr(module, "SPEC"):
        raise UsageError(f"{spec_path}: defines no SPEC (expected SPEC = <KernelSpec subclass>())")
    spec = validate_spec(module.SPEC, str(spec_path))
    spec.name = name
    impls = []
    for path in sorted(folder.glob(f"{name}_*.py")):
        family, variant = parse_backend_filename(name, path)
        _check_defines_forward(path)
        impls.append(Implementation(family, variant, path))
    return Kernel(name, folder, spec, tuple(impls))


def parse_backend_filename(algo: str, path: Path) -> tuple[str, str]:
    rest = path.stem[len(algo) + 1:]
    family, _, variant = rest.partition("_")
    if family not in SOURCES:
        raise UsageError(f"{path}: unknown backend family {family!r} in the file name; "
                         f"expected {algo}_<family>[_<variant>].py with family one of "
                         f"{', '.join(SOURCES)}")
    if variant and not variant.replace("_", "").isalnum():
        raise UsageError(f"{path}: variant {variant!r} must be letters, digits and _")
    return family, variant


def _check_defines_forward(path: Path) -> None:
    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError as exc:
        raise UsageError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name)}
    if "forward" not in names:
        raise UsageError(f"{path}: defines no forward() function")


def import_file(path: Path, module_name: str):
    """Import a file under a unique module name (never shadowing `numpy`, `torch`, ...)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except UsageError:
        raise
    except Exception as exc:  # a broken kernel file is the user's input: report it as such
        sys.modules.pop(module_name, None)
        raise UsageError(f"{path}: import failed: {type(exc).__name__}: {exc}") from None
    return module


def import_backend(path: Path):
    """Import a backend file in the worker (here its framework import is wanted)."""
    return import_file(path, f"kernbench_kernels.{_safe(path.parent)}.{path.stem}")


def _safe(folder: Path) -> str:
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:8]
    return f"{folder.name}_{digest}"
