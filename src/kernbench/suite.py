"""Suites: sweep definitions in TOML, checked when loaded, expanded into cases.

    [suite]
    name = "smoke"
    backends = ["numpy", "torch_compile"]   # a backend selects all its variants;
    dtypes = ["float32", "bfloat16"]         # "torch_eager:sdpa" selects one
    devices = ["cpu"]
    modes = ["forward"]
    budget_s = 0.05          # CaseSettings fields: defaults for every kernel
    timeout_s = 300

    [kernels.softmax]        # only the kernels listed here run
    params = { rows = [64, 256], cols = [128] }      # cartesian product, or
    cases = [ { rows = 4096, cols = 4096 } ]         # an explicit list (both may be given)
    dtypes = ["float32"]     # any [suite] key may be overridden per kernel

Without `backends`, every backend runs, except a CPU simulator of a GPU backend (numba_cuda on
`cpu`), which runs only where named.

A sweep is the product params x dtypes x devices x backends x modes. Every error names the file
and the key, with the allowed values, and is a UsageError (exit code 2).
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .backends import BACKENDS, backends_for_source, family_of
from .case import MODES, Case, CaseSettings
from .discovery import Implementation, Kernel
from .dtypes import FLOAT_DTYPES
from .errors import UsageError, unknown

SETTING_FIELDS = {f.name: f.type for f in fields(CaseSettings)}
SWEEP_KEYS = {"backends", "dtypes", "devices", "modes"}
#: `gate_threshold` (suite-wide and per kernel): the relative slowdown the regression gate
#: treats as real (0.10 = 10%); recorded in the run header's "gate" key (kernbench.compare).
GATE_KEYS = {"gate_threshold"}
SUITE_KEYS = {"name", "description", "threads", "kernels_from", *SWEEP_KEYS, *SETTING_FIELDS,
              *GATE_KEYS}
KERNEL_KEYS = {"params", "cases", *SWEEP_KEYS, *SETTING_FIELDS, *GATE_KEYS}


@dataclass(frozen=True)
class PlannedCase:
    case: Case
    settings: CaseSettings
    kernel: Kernel
    impl: Implementation


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    description: str
    threads: int
    cases: tuple[PlannedCase, ...]
    #: gate thresholds: {"threshold": suite-wide or None, "kernels": {name: threshold}}
    gate: dict = field(default_factory=lambda: {"threshold": None, "kernels": {}})


def load_suite(path: str | Path, kernels: dict[str, Kernel]) -> Suite:
    where = str(path)
    data = _read_toml(Path(path))
    head = data.get("suite", {})
    if isinstance(head, dict) and "kernels_from" in head:
        # another suite's [kernels] (its shapes and modes) under this [suite]'s settings: one
        # list of shapes serves several devices (gpu_smoke.toml runs smoke.toml's on CUDA);
        # this file's own [kernels.X] replace the other's X
        source = Path(path).parent / str(head["kernels_from"])
        context = f"{where}: [suite] kernels_from: "
        base = _read_toml(source, context)
        data = {**data, "suite": {k: v for k, v in head.items() if k != "kernels_from"},
                "kernels": {**_kernels_table(base, f"{context}{source}"),
                            **_kernels_table(data, where)}}
    return build_suite(data, kernels, where)


def _kernels_table(data: dict, where: str) -> dict:
    """A file's [kernels], checked to be a table before it is merged with another's."""
    table = data.get("kernels", {})
    if not isinstance(table, dict):
        raise UsageError(f"{where}: [kernels]: expected a table, got {type(table).__name__}")
    return table


def _read_toml(path: Path, context: str = "") -> dict:
    where = f"{context}{path}"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"{where}: no such suite file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not a text file") from None
    except OSError as exc:  # unreadable (permissions), a directory, an I/O error
        raise UsageError(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: not valid TOML: {exc}") from None


def build_suite(data: dict, kernels: dict[str, Kernel], where: str) -> Suite:
    _check_keys(data, {"suite", "kernels"}, where)
    head = data.get("suite", {})
    _expect(head, dict, f"{where}: [suite]")
    _check_keys(head, SUITE_KEYS, f"{where}: [suite]")
    table = _kernels_table(data, where)
    if not table:
        raise UsageError(f"{where}: [kernels]: no kernels listed; available: "
                         f"{', '.join(sorted(kernels))}")
    _check_suite_values(head, f"{where}: [suite]")
    planned: list[PlannedCase] = []
    gate = {"threshold": _gate_threshold(head, f"{where}: [suite]"), "kernels": {}}
    for kname, kconf in table.items():
        kwhere = f"{where}: [kernels.{kname}]"
        if kname not in kernels:
            raise unknown("kernel", kname, kernels, f"{where}: [kernels]")
        _expect(kconf, dict, kwhere)
        _check_keys(kconf, KERNEL_KEYS, kwhere)
        merged = {**head, **kconf}
        planned.extend(_expand(kernels[kname], merged, kwhere))
        if "gate_threshold" in kconf:
            gate["kernels"][kname] = _gate_threshold(kconf, kwhere)
    if not planned:
        raise UsageError(f"{where}: the sweep is empty")
    threads = head.get("threads", 0)
    _expect(threads, int, f"{where}: [suite] threads")
    return Suite(str(head.get("name", Path(where).stem)), where, str(head.get("description", "")),
                 threads, tuple(planned), gate)


def _gate_threshold(conf: dict, where: str) -> float | None:
    value = conf.get("gate_threshold")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10:
        raise UsageError(f"{where} gate_threshold: expected a relative slowdown between 0 and 10 "
                         f"(0.1 = 10%), got {value!r}")
    return float(value)


DEVICE_NAMES = ("cpu", "cuda", "cuda:N")


def is_device_name(d: str) -> bool:
    return d == "cpu" or d == "cuda" or (d.startswith("cuda:") and d[5:].isdigit())


def _check_suite_values(head: dict, where: str) -> None:
    """The [suite] table's own values, so an error in one is named under [suite], not under the
    first kernel that inherits it. What depends on a kernel (a labelled backend such as
    "torch_eager:sdpa", min_samples against a max_samples only a kernel sets) is checked per
    kernel, on the merged table."""
    if {"min_samples", "max_samples"} <= head.keys():
        _settings(head, where)  # both set here: they contradict each other here
    else:
        _setting_values(head, where)
    _sweep_axes(head, where)
    for b in _str_list(head, "backends", list(BACKENDS), where):
        if ":" not in b and b not in BACKENDS:
            raise unknown("backend", b, BACKENDS, f"{where} backends")


def _sweep_axes(conf: dict, where: str) -> tuple[list[str], list[str], list[str]]:
    """(dtypes, devices, modes) of a table, checked."""
    dtypes = _names(conf, "dtypes", ["float32"], FLOAT_DTYPES, where)
    devices = _str_list(conf, "devices", ["cpu"], where)
    for d in devices:
        if not is_device_name(d):
            raise unknown("device", d, DEVICE_NAMES, f"{where} devices")
    modes = _names(conf, "modes", ["forward"], MODES, where)
    return dtypes, devices, modes


def _expand(kernel: Kernel, conf: dict, where: str) -> Iterable[PlannedCase]:
    spec = kernel.spec
    settings = _settings(conf, where)
    dtypes, devices, modes = _sweep_axes(conf, where)
    backends = _str_list(conf, "backends", list(BACKENDS), where)
    # a simulator (numba-cuda on a CPU) runs only where a suite names it: minutes per call at
    # ordinary shapes would swamp a sweep that merely left `backends` to its default
    named = "backends" in conf
    labels = {impl.label(b): (b, impl) for impl in kernel.implementations
              for b in family_backends(impl.family)}
    selected: dict[str, tuple[str, Implementation]] = {}
    for b in backends:
        if ":" in b:  # one labelled variant
            if b not in labels:
                raise unknown("backend", b, [*BACKENDS, *labels], f"{where} backends")
            selected[b] = labels[b]
            continue
        if b not in BACKENDS:
            raise unknown("backend", b, [*BACKENDS, *labels], f"{where} backends")
        for label, (base, impl) in labels.items():
            if base == b:
                selected[label] = (base, impl)
    for params in _param_sets(spec, conf, where):
        for backend, impl in selected.values():
            for device, dtype, mode in itertools.product(devices, dtypes, modes):
                if device == "cpu" and not named and family_of(backend).cpu_simulator:
                    continue
                case = Case(kernel.name, backend, impl.variant, device, dtype, mode,
                            tuple(params.items()))
                yield PlannedCase(case, settings, kernel, impl)


def family_backends(source: str) -> tuple[str, ...]:
    """The backends that run `<algo>_<source>.py` files."""
    return backends_for_source(source)


def _param_sets(spec, conf: dict, where: str) -> list[dict[str, Any]]:
    sets: list[dict[str, Any]] = []
    if "params" in conf:
        grid = conf["params"]
        _expect(grid, dict, f"{where} params")
        axes = []
        for key, values in grid.items():
            values = values if isinstance(values, list) else [values]
            if not values:
                raise UsageError(f"{where} params.{key}: empty list")
            axes.append([(key, v) for v in values])
        sets.extend(dict(combo) for combo in itertools.product(*axes))
    if "cases" in conf:
        _expect(conf["cases"], list, f"{where} cases")
        for i, entry in enumerate(conf["cases"]):
            _expect(entry, dict, f"{where} cases[{i}]")
            sets.append(dict(entry))
    if not sets:
        sets.append({})
    return [spec.resolve(s, f"{where} params") for s in sets]


#: Settings that must be above zero: `max_samples = 0` takes no sample (every case fails) and
#: `timeout_s = 0` times every case out. The other numbers may be 0: `budget_s` (take
#: `min_samples` and stop), `warmup_s` (no warm-up), `min_block_s` (one call per block),
#: `min_samples` (at least one sample is always taken), `seed`.
POSITIVE_SETTINGS = {"max_samples", "timeout_s"}
#: The runner waits for a worker with select(), whose timeout (milliseconds in a C int) overflows
#: past ~24.8 days: a longer `timeout_s` would crash the run, not wait (`kernbench ab` waits
#: twice it: still under the limit).
MAX_TIMEOUT_S = 1e6


def _setting_values(conf: dict, where: str) -> dict[str, Any]:
    """The CaseSettings fields a table sets, each checked on its own."""
    values = {}
    for key in SETTING_FIELDS:
        if key not in conf:
            continue
        default = getattr(CaseSettings, key)
        value = conf[key]
        if isinstance(default, bool):
            _expect(value, bool, f"{where} {key}")
        elif isinstance(default, int):
            _expect(value, int, f"{where} {key}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(f"{where} {key}: expected a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise UsageError(f"{where} {key}: expected a finite number, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if key in POSITIVE_SETTINGS and value <= 0:
                raise UsageError(f"{where} {key}: must be greater than 0, got {value!r}")
            if value < 0:
                raise UsageError(f"{where} {key}: must not be negative, got {value!r}")
        if key == "timeout_s" and value > MAX_TIMEOUT_S:
            raise UsageError(f"{where} {key}: must be at most {MAX_TIMEOUT_S:g} s, got {value!r}")
        values[key] = value
    return values


def _settings(conf: dict, where: str) -> CaseSettings:
    values = _setting_values(conf, where)
    settings = CaseSettings(**values)
    if settings.min_samples > settings.max_samples:
        given = " and ".join(k for k in ("min_samples", "max_samples") if k in values)
        raise UsageError(f"{where} {given}: min_samples ({settings.min_samples}) must not exceed "
                         f"max_samples ({settings.max_samples})")
    return settings


def _str_list(conf: dict, key: str, default: list[str], where: str) -> list[str]:
    value = conf.get(key, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where} {key}: expected a list of strings, got {value!r}")
    if not value:
        raise UsageError(f"{where} {key}: empty list")
    return value


def _names(conf, key, default, allowed, where) -> list[str]:
    values = _str_list(conf, key, default, where)
    for v in values:
        if v not in allowed:
            raise unknown(key.rstrip("s"), v, allowed, f"{where} {key}")
    return values


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise unknown("key", key, allowed, where)


def _expect(value: Any, kind: type, where: str) -> None:
    if isinstance(value, bool) and kind is not bool:
        raise UsageError(f"{where}: expected {kind.__name__}, got {value!r}")
    if not isinstance(value, kind):
        raise UsageError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")


def filter_cases(cases: Iterable[PlannedCase], *, kernels=None, backends=None, dtypes=None,
                 devices=None, modes=None, known_kernels=(), case_patterns=None
                 ) -> list[PlannedCase]:
    """Apply `--kernel/--backend/--dtype/--device/--mode` filters (unknown names are
    UsageErrors), then `--case` patterns: shell-style (fnmatch, `*` crosses `/`) against the
    case id, a case kept when any pattern matches it. A pattern that matches no case left is a
    UsageError too: a mistyped shape would otherwise drop its cases without a word."""
    cases = _filter_names(list(cases), kernels, backends, dtypes, devices, modes, known_kernels)
    if not case_patterns:
        return cases
    for pattern in case_patterns:
        if not any(fnmatch.fnmatchcase(p.case.id, pattern) for p in cases):
            raise UsageError(f"--case {pattern}: matches none of the {len(cases)} cases planned "
                             f"(ids look like {cases[0].case.id})" if cases else
                             f"--case {pattern}: no case is planned")
    return [p for p in cases if any(fnmatch.fnmatchcase(p.case.id, pat)
                                    for pat in case_patterns)]


def _filter_names(cases, kernels, backends, dtypes, devices, modes, known_kernels):
    checks = [("kernel", kernels, lambda p: p.case.kernel, set(known_kernels)),
              ("backend", backends, None, set(BACKENDS)),
              ("dtype", dtypes, lambda p: p.case.dtype, set(FLOAT_DTYPES)),
              ("device", devices, lambda p: p.case.device, None),
              ("mode", modes, lambda p: p.case.mode, set(MODES))]
    for what, wanted, key, allowed in checks:
        if not wanted:
            continue
        for w in wanted:
            if what == "backend":
                if w.split(":", 1)[0] not in BACKENDS:  # a variant label's base name counts
                    raise unknown("backend", w, BACKENDS, "--backend")
            elif what == "device" and not is_device_name(w):
                raise unknown("device", w, DEVICE_NAMES, "--device")
            elif allowed is not None and w not in allowed:
                raise unknown(what, w, allowed, f"--{what}")
        before = cases
        if what == "backend":
            cases = [p for p in cases if p.case.backend in wanted or p.case.label in wanted]
        else:
            cases = [p for p in cases if key(p) in wanted]
        if before and not cases:  # say which filter emptied the plan, and what it could take
            planned = sorted({p.case.label if what == "backend" else key(p) for p in before})
            raise UsageError(f"--{what} {', '.join(wanted)}: no planned case has it (the cases "
                             f"left plan: {', '.join(planned)})")
    return cases
