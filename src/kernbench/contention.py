"""Whether other work shared the CPUs while a case was timed.

Why: on a shared machine another process, or on a VM the hypervisor's other guests (steal
time), can slow a case without widening its spread. A case timed entirely under contention has
a tight IQR around a wrong median: on the 2-core VM, torch_eager times stuck at 24/40/56 ms with
an IQR under 0.5% while two other sweeps ran, for a case that measured 6.3 ms alone. The spread
cannot tell; the scheduler's accounting can, in three figures over the timed window:

- `wait`: of the time the worker's threads wanted a CPU, the share they spent waiting for one
  in the run queue (/proc/self/task/*/schedstat, nanoseconds). Recorded, not judged: most of
  it on a quiet machine is the worker oversubscribing itself. In a full cpu.toml run on the
  2-core VM, 19 jax_jit cases waited 20-40% with other processes at 0-2.4% (XLA's pool of
  every core beside the thread that dispatches and waits), which rerunning would not change.
- `other_cpu`: the CPU time every process used (/proc/stat) less this worker's own (getrusage,
  all its threads), as a share of what all CPUs could give: others running beside a kernel
  that left them a core still share its memory bandwidth and last-level cache.
- `steal`: the share the hypervisor gave to other guests (/proc/stat), which no run queue in
  this guest shows.

`other_cpu` or `steal` at CONTENDED_SHARE or more flags the case `contended`. Linux only
(elsewhere nothing is recorded). /proc/stat counts in clock ticks (10 ms per CPU), so
`other_cpu` is judged only over MIN_WINDOW_S or more: a case that settles sooner is not judged
by it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

try:
    import resource
except ImportError:  # pragma: no cover - not a POSIX system: nothing is recorded
    resource = None

PROC_STAT = Path("/proc/stat")
TASKS = Path("/proc/self/task")
#: Other processes' (and the hypervisor's) share of all CPUs over the timed window at which a
#: case is flagged `contended`: a fifth of the machine taken by others while it was timed.
CONTENDED_SHARE = 0.2
#: Shorter windows are recorded but never flagged: one 10 ms tick is 1% of a 1 s window on
#: one CPU, but 20% of a 50 ms one.
MIN_WINDOW_S = 0.2


def system_cpu_s(stat: Path = PROC_STAT) -> tuple[float, float] | None:
    """(busy, steal) CPU seconds summed over all CPUs since boot, from /proc/stat's `cpu` line
    (busy: user, nice, system, irq, softirq and steal; guest time is already inside user)."""
    try:
        with open(stat, encoding="ascii") as f:
            fields = f.readline().split()
        if not fields or fields[0] != "cpu":
            return None
        ticks = [int(x) for x in fields[1:9]] + [0] * max(0, 9 - len(fields))
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    hz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / hz, steal / hz


def thread_sched_ns(tasks: Path = TASKS) -> dict[str, tuple[int, int]]:
    """{thread id: (ns on a CPU, ns waiting in a run queue)} for this process's threads."""
    found = {}
    try:
        tids = [p.name for p in tasks.iterdir()]
    except OSError:
        return found
    for tid in tids:
        try:
            run, wait = (tasks / tid / "schedstat").read_text().split()[:2]
            found[tid] = (int(run), int(wait))
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile, or a kernel without schedstat
    return found


def own_cpu_s() -> float | None:
    """CPU seconds this process (all its threads) has used."""
    if resource is None:
        return None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Window:
    """A timed window: `with Window() as w: ...`, then `w.result()`."""

    def __init__(self, stat: Path = PROC_STAT, tasks: Path = TASKS, cpus: int | None = None):
        self.stat, self.tasks, self.cpus = stat, tasks, cpus or os.cpu_count() or 1
        self.start: tuple | None = None  # (wall s, system (busy, steal) s, own CPU s, threads)
        self.end: tuple | None = None

    def _now(self):
        return (time.perf_counter(), system_cpu_s(self.stat), own_cpu_s(),
                thread_sched_ns(self.tasks))

    def __enter__(self) -> Window:
        self.start = self._now()
        return self

    def __exit__(self, *exc) -> None:
        self.end = self._now()

    def result(self) -> dict | None:
        """{"wait", "other_cpu", "steal", "window_s", "cpus"} (module docstring); None where
        /proc/stat is not readable."""
        if self.start is None or self.end is None or None in (
                self.start[1], self.end[1], self.start[2], self.end[2]):
            return None
        (t0, (busy0, steal0), own0, threads0), (t1, (busy1, steal1), own1, threads1) = (
            self.start, self.end)
        window = t1 - t0
        if window <= 0:
            return None
        capacity = window * self.cpus
        others = max(0.0, (busy1 - busy0) - (own1 - own0))
        ran = waited = 0
        for tid, (run, wait) in threads1.items():  # a thread started meanwhile counts from 0
            run0, wait0 = threads0.get(tid, (0, 0))
            ran, waited = ran + run - run0, waited + wait - wait0
        return {"wait": waited / (ran + waited) if ran + waited > 0 else None,
                "other_cpu": min(1.0, others / capacity),
                "steal": min(1.0, max(0.0, steal1 - steal0) / capacity),
                "window_s": window, "cpus": self.cpus}


def contended(found: dict | None) -> bool:
    """Whether a window's figures say others shared the machine enough to doubt the time
    (`wait` is not a criterion: see the module docstring)."""
    if not found:
        return False
    return found["steal"] >= CONTENDED_SHARE or (
        found["window_s"] >= MIN_WINDOW_S and found["other_cpu"] >= CONTENDED_SHARE)
