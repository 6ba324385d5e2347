"""Worker processes never outlive the run that started them.

Workers run in their own session (so a kernel's signals and a `timeout` kill aimed at the run
cannot half-kill a measurement mid-case), which also means nothing kills them when the run dies.
A worker left behind keeps running its case on the same cores or GPU while the next run times
its own cases: those timings are wrong and nothing flags them. So the run turns SIGTERM (what
`timeout`, CI cancellation and `kill` send) into KeyboardInterrupt, whose handlers kill the
current worker, and each worker asks Linux to SIGKILL it when its parent dies
(PR_SET_PDEATHSIG), for the parent that is killed outright (SIGKILL, OOM).
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1
#: set by the run in a worker's environment: the pid the worker must see as its parent
PARENT_ENV = "KERNBENCH_PARENT_PID"


def interrupt_on_sigterm() -> None:
    """In the run's process: SIGTERM raises KeyboardInterrupt, so `finally` blocks kill workers
    and flush what was measured, as Ctrl-C does."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (kernbench called from a library's thread)
        pass


def die_with_parent() -> None:
    """In a worker, first thing: be killed when the parent dies. If the parent died before this
    call (the worker already re-parented), exit now."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    expected = os.environ.get(PARENT_ENV)
    if expected and os.getppid() != int(expected):
        os._exit(1)
