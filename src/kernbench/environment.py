"""Provenance for the run header: machine, software versions, git state, settings.

Versions come from package metadata, not imports: the parent process never imports a framework.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .backends import FAMILIES

#: whose versions the run header records and the fingerprint keys on: every family's own
#: `distributions` (so a new family's framework is recorded without a second list), and pandas
DISTRIBUTIONS: tuple[str, ...] = tuple(dict.fromkeys(
    [d for family in FAMILIES.values() for d in family.distributions] + ["pandas"]))

#: Environment variables that change what the frameworks do; recorded in every run.
RELEVANT_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                "XLA_FLAGS", "GLIBC_TUNABLES", "TRITON_INTERPRET", "CUDA_VISIBLE_DEVICES",
                "TORCHINDUCTOR_CACHE_DIR", "XLA_PYTHON_CLIENT_PREALLOCATE",
                "TORCH_COMPILE_DEBUG", "JAX_ENABLE_X64", "NUMBA_DISABLE_JIT", "MALLOC_ARENA_MAX")


def software() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    try:
        out["kernbench"] = metadata.version("kernbench")
    except metadata.PackageNotFoundError:
        out["kernbench"] = None
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx", "fma", "amx")))
    except OSError:
        pass
    return []


def governor() -> str | None:
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        return None


def gpus() -> list[dict]:
    """GPUs as nvidia-smi reports them (no framework import); empty without a driver."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm,"
             "clocks.sm,clocks.mem,power.limit,pstate", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    rows = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 8:
            rows.append({"name": parts[0], "memory": parts[1], "driver": parts[2],
                         "max_sm_clock": parts[3], "sm_clock": parts[4], "mem_clock": parts[5],
                         "power_limit": parts[6], "pstate": parts[7],
                         "cuda": cuda_version()})
    return rows


def cuda_version() -> str | None:
    """The driver's CUDA version, from nvidia-smi's banner."""
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for token in out.split("CUDA Version:")[1:2]:
        return token.split()[0]
    return None


def machine() -> dict:
    return {"hostname": platform.node(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "memory_bytes": memory_bytes(), "arch": platform.machine(),
            "cpu_flags": cpu_flags(), "os": platform.platform(), "governor": governor(),
            "gpus": gpus()}


def fingerprint(mach: dict, soft: dict) -> str:
    """What makes two runs' timings comparable: CPU, cores, GPUs, library versions."""
    import hashlib

    # only what is installed: a package kernbench learns to look for (None here) must not
    # change every fingerprint and orphan every stored baseline
    key = [mach.get("cpu"), mach.get("cores"), [g.get("name") for g in mach.get("gpus", [])],
           *(f"{k}={v}" for k, v in sorted(soft.items()) if v is not None and k != "kernbench")]
    return hashlib.sha256(repr(key).encode()).hexdigest()[:12]


def git_info(cwd: str | Path = ".") -> dict:
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain")
    return {"commit": commit, "branch": run("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(status) if status is not None else None}


def relevant_env(env: dict[str, str]) -> dict[str, str]:
    return {k: env[k] for k in RELEVANT_ENV if k in env}
