"""`kernbench merge`: join the shard files of one sweep (`run --shard K/N`) into one run file.

Files from different suites or schema versions are refused: their cases would not be
comparable. The merged header is the first file's, with `merged_from` listing every run id;
a case present in two files keeps the later file's record."""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .paths import writable_file
from .results import RunWriter, latest_by_id, read_run


def merge(paths: list[str], output: str) -> Path:
    if len(paths) < 2:
        raise UsageError("merge: give at least two results files")
    if Path(output).exists() and not Path(output).is_dir():
        raise UsageError(f"merge: {output} exists; choose another output")
    out = writable_file(output, "merge: -o")
    runs = [read_run(p) for p in paths]
    first = runs[0].header
    for run in runs[1:]:
        for key in ("schema", "suite"):
            if run.header.get(key) != first.get(key):
                raise UsageError(f"merge: {run.path} has {key} {run.header.get(key)!r}, "
                                 f"{runs[0].path} has {first.get(key)!r}: not one sweep")
        if run.header.get("fingerprint") != first.get("fingerprint"):
            import warnings

            from .errors import KernbenchWarning

            warnings.warn(f"merge: {run.path} was measured on another machine/software "
                          f"fingerprint than {runs[0].path}", KernbenchWarning, stacklevel=2)
    header = {**first, "merged_from": [r.header.get("run_id") for r in runs], "shard": None}
    cases = latest_by_id([c for r in runs for c in r.cases])
    header["n_cases"] = len(cases)
    with RunWriter(out, header) as w:
        for record in cases.values():
            w.write(record)
    return out
