"""Errors a user can cause, and the exit code they map to.

Bad input (unknown kernel, malformed suite, unreadable results file, ...) is a `UsageError`: the
CLI prints its one-line message and exits with code 2. Everything a *backend* does wrong is not an
exception at this level: it becomes a case record with status failed/crashed/timeout.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_COMPARABLE = 3


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""

    exit_code = EXIT_USAGE


class KernbenchWarning(UserWarning):
    """Something the user should know that does not stop the command (a cut-off last line
    dropped, shards from two machines merged): the CLI prints it as one `kernbench: warning:`
    line, without Python's source-location prefix."""


def unknown(what: str, value: object, allowed: Iterable[str], where: str = "") -> UsageError:
    """Build the error for an unknown name, with a did-you-mean and the allowed values."""
    allowed = sorted({str(a) for a in allowed})
    close = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    prefix = f"{where}: " if where else ""
    return UsageError(
        f"{prefix}unknown {what} {value!r}{hint}; allowed: {', '.join(allowed) or '(none)'}"
    )
