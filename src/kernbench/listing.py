"""`kernbench list`: the kernels found, their backends, and whether each can run here."""

from __future__ import annotations

from .backends import FAMILIES, backends_for_source, family_of
from .discovery import discover


def listing(extra_dirs: list[str] | None = None) -> str:
    kernels = discover(extra_dirs)
    lines = ["backends:"]
    for fam in FAMILIES.values():
        missing = fam.missing()
        state = f"unavailable: {missing}" if missing else "available"
        lines.append(f"  {', '.join(fam.backends):<28} ({fam.name}) {state}; dtypes "
                     f"{', '.join(fam.dtypes)}")
    lines.append("")
    lines.append("kernels:")
    for name, k in sorted(kernels.items()):
        labels = []
        for impl in k.implementations:
            labels += [impl.label(b) + ("" if not family_of(b).missing() else " (unavailable)")
                       for b in backends_for_source(impl.family)]
        params = ", ".join(f"{p}={v}" for p, v in k.spec.defaults.items())
        lines.append(f"  {name:<20} {k.folder}")
        lines.append(f"  {'':<20} params: {params}")
        lines.append(f"  {'':<20} backends: {', '.join(labels) or '(none)'}")
    return "\n".join(lines)
