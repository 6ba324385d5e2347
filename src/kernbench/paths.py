"""Output paths the user names, checked before any work is done.

Why a module of its own: every command that writes (run, ab, report, export, merge, profile,
gate --markdown, baseline save) must fail the same way on a path it cannot write: a one-line
usage error (exit 2) before anything is measured, never a traceback after an hour of
calibration and sweeping. The same functions keep the user's earlier files: an output that is
also an input is refused, and a file a fresh run would replace is moved aside, not deleted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from .errors import UsageError


def writable_file(path: str | Path, what: str, inputs: Iterable[str | Path] = ()) -> Path:
    """`path` as a file this process can create or append to. Refused: a folder, a path under
    a file, a place the process may not write, and any of `inputs` (writing the report over its
    results file would lose the results). Nothing is left behind: a missing folder is made by
    the writer (`write_output`, results.RunWriter), so a command refused after this check
    leaves no empty folder."""
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{what} {out}: is a folder; name a file")
    for source in inputs:
        if same_file(out, Path(source)):
            raise UsageError(f"{what} {out}: is also an input; writing it would overwrite "
                             f"what it reads")
    writable_folder(out.parent, what)
    if not out.parent.is_dir():
        return out  # its nearest existing folder is writable (checked above)
    existed = out.exists()
    try:
        with open(out, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"{what} {out}: cannot write: {exc.strerror or exc}") from None
    if not existed:
        out.unlink()
    return out


def writable_folder(path: str | Path, what: str) -> Path:
    """`path` as a folder in which this process can create files: an existing folder it may
    write, or a missing one whose nearest existing folder it may write. Nothing is made here
    (see writable_file): the command makes it when it writes."""
    folder = Path(path)
    existing = next((p for p in (folder, *folder.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"{what} {folder}: {existing} is a file, not a folder")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == folder else f" ({existing} is not writable)"
        raise UsageError(f"{what} {folder}: not writable{where}")
    return folder


def write_output(path: Path, text: str) -> None:
    """Write a checked output file whole: its folder is made now, and the text goes to a
    temporary name first, so a reader never sees half a file and a failure keeps the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def keep_previous(path: Path) -> Path | None:
    """Move an existing file aside (`NAME-replaced-<mtime>.EXT`) before a fresh run writes
    `path`, so an earlier run's results are never lost; says so and returns where it went."""
    if not path.exists():
        return None
    kept = path.with_name(f"{path.stem}-replaced-{int(path.stat().st_mtime)}{path.suffix}")
    path.rename(kept)
    print(f"kernbench: {path} existed; moved it to {kept}", file=sys.stderr)
    return kept


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether `a` and `b` name one file: the same inode where both exist (links included),
    else the same absolute path (an input a command will write first, as ab's results)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False
