"""The results contract (schema 1): one JSON Lines file per run.

Line 1 describes the run (`"type": "run"`); every other line is one case (`"type": "case"`).
Cases are appended and flushed one by one, so an interrupted run loses nothing. Readers (report,
gate, pandas) use only this module: they never import a framework or time anything. Files are
read as JSON, never unpickled.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import KernbenchWarning, UsageError

SCHEMA = 1
STATUSES = ("ok", "failed", "skipped", "unsupported", "timeout", "crashed")


class RunWriter:
    """Append-only writer: the header once, then one flushed line per case."""

    def __init__(self, path: str | Path, header: dict | None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        if header is not None:
            self.write(header)

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class RunFile:
    path: str
    header: dict
    cases: list[dict]


#: optional case fields and the JSON types a reader relies on (None is allowed for each)
CASE_FIELD_TYPES = {"params": dict, "flags": list, "time": dict, "accuracy": dict,
                    "memory": dict, "compile_s": (int, float, dict), "contention": dict,
                    "roof_recheck": dict}
#: the same for the run header
HEADER_FIELD_TYPES = {"settings": dict, "ceilings": dict, "machine": dict, "software": dict,
                      "git": dict, "ab": dict, "gate": dict, "kernels": dict}


def read_run(path: str | Path) -> RunFile:
    """Read and check a results file; it is never modified (`cut_partial_line` does that for
    `--resume`, once the file has been read and accepted). A partial last line (a run killed
    mid-write) is dropped with a warning; anything else malformed is a UsageError naming the
    file and line."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise UsageError(f"{where}: no such results file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{where}: cannot read: {exc.strerror or exc}") from None
    lines = raw.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    header: dict | None = None
    cases: list[dict] = []
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UsageError(f"{where}:{number}: not a kernbench results file "
                             f"(line is not JSON)") from None
        if not isinstance(obj, dict) or obj.get("type") not in ("run", "case"):
            raise UsageError(f"{where}:{number}: not a kernbench results file "
                             f"(expected a run or case record)")
        if header is None:
            if obj["type"] != "run":
                raise UsageError(f"{where}:{number}: not a kernbench results file "
                                 f"(no run header)")
            schema = obj.get("schema")
            if not isinstance(schema, int) or schema > SCHEMA:
                raise UsageError(f"{where}: results schema {schema!r} is newer than this "
                                 f"kernbench reads (schema {SCHEMA}); upgrade kernbench")
            _check_fields(obj, HEADER_FIELD_TYPES, f"{where}:{number}: run header")
            header = obj
            continue
        if obj["type"] == "run":  # two runs in one file: whose settings describe which case?
            raise UsageError(f"{where}:{number}: a second run header; a results file holds one "
                             f"run (join shards with `kernbench merge`)")
        if not isinstance(obj.get("id"), str) or not obj["id"] or \
                obj.get("status") not in STATUSES:
            raise UsageError(f"{where}:{number}: case record without a string id or a valid "
                             f"status")
        _check_fields(obj, CASE_FIELD_TYPES, f"{where}:{number}: case {obj['id']}")
        cases.append(obj)
    if header is None:
        what = "no complete run header" if tail.strip() else "empty results file"
        raise UsageError(f"{where}: {what}")
    if tail.strip():
        warnings.warn(f"{where}: dropping a partial last line ({len(tail)} bytes): the run was "
                      f"cut off while writing", KernbenchWarning, stacklevel=2)
    return RunFile(where, header, cases)


def cut_partial_line(path: str | Path) -> int:
    """Cut a results file after its last complete line (the part a killed writer left), so
    appended records start on a line of their own; returns the bytes cut. Call it only on a
    file `read_run` accepted."""
    raw = Path(path).read_bytes()
    keep = raw.rfind(b"\n") + 1
    if keep < len(raw):
        with open(path, "r+b") as f:
            f.truncate(keep)
    return len(raw) - keep


def _check_fields(record: dict, types: dict, where: str) -> None:
    for key, expected in types.items():
        value = record.get(key)
        if value is not None and not isinstance(value, expected):
            raise UsageError(f"{where}: field {key!r} is {type(value).__name__}, not "
                             f"{_type_names(expected)}")


def _type_names(expected) -> str:
    names = {dict: "an object", list: "a list", int: "a number", float: "a number"}
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(dict.fromkeys(names[k] for k in kinds))


def latest_by_id(cases: list[dict]) -> dict[str, dict]:
    """One record per case id, the last one written winning (a resumed run may repeat one)."""
    return {c["id"]: c for c in cases}


FLAT_FIELDS = ("id", "kernel", "backend", "variant", "device", "dtype", "mode", "status",
               "reason", "compile_s", "gflops", "gbps", "intensity", "roofline_fraction")


def flatten(case: dict) -> dict[str, Any]:
    row = {k: case.get(k) for k in FLAT_FIELDS}
    row["label"] = f"{case['backend']}:{case['variant']}" if case.get("variant") else case.get(
        "backend")
    row["params"] = case.get("params", {})
    t = case.get("time") or {}
    for k in ("median_s", "min_s", "iqr_s", "per_sample_calls", "n_samples"):
        row[k] = t.get(k)
    a = case.get("accuracy") or {}
    for k in ("max_abs", "rel_l2", "max_ulp", "nonfinite", "tolerance", "passed"):
        row[f"acc_{k}" if k != "passed" else "accurate"] = a.get(k)
    m = case.get("memory") or {}
    row["peak_bytes"] = m.get("peak_bytes")
    row["memory_method"] = m.get("method")
    row["flags"] = ",".join(case.get("flags") or [])
    return row


def load(path: str | Path):
    """The cases of a results file as a pandas DataFrame, one row per case (see `flatten`)."""
    import pandas as pd

    run = read_run(path)
    df = pd.DataFrame([flatten(c) for c in latest_by_id(run.cases).values()])
    df.attrs["run"] = run.header
    return df
