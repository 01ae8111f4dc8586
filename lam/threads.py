"""How many CPU threads torch runs on: the CPUs this process may use, not the machine's.

torch starts with one thread per physical core of the machine. In a container with a CPU
quota, or a process pinned to a few cores, that is more threads than CPUs, and OpenMP threads
that wait on each other at every operation then run several times slower than fewer threads
would. :func:`available_cpus` reads the affinity mask and the cgroup quota (v2 ``cpu.max``,
v1 ``cpu.cfs_quota_us``); :func:`set_threads` applies a count, process-wide (torch has one
intra-op pool per process).

A machine where another process competes for the same cores is not visible this way; there
one thread is often faster than two (``benchmarks/results/threads.md`` measures it), so
``threads=1`` / ``--threads 1`` is the setting for busy machines.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup quota, or None when there is none."""
    v2 = Path("/sys/fs/cgroup/cpu.max")
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        if v1.is_file():
            quota = int(v1.read_text())
            period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None
    return None


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by the cgroup quota (at least 1)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return max(1, count)


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads; returns the count in effect.

    ``threads=None`` only lowers torch's default to :func:`available_cpus` (and leaves it alone
    when ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` says otherwise); an int is applied as given.
    """
    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        torch.set_num_threads(threads)
    elif not (os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS")):
        cpus = available_cpus()
        if torch.get_num_threads() > cpus:
            torch.set_num_threads(cpus)
    return torch.get_num_threads()
