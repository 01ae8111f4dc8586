"""How many CPU threads torch runs on: the CPUs this process may use, and the ones left free.

torch starts with one thread per physical core of the machine. In a container with a CPU
quota, or a process pinned to a few cores, that is more threads than CPUs; and when another
process is busy on the same cores, OpenMP threads that wait on each other at every operation
run several times slower than one thread would (``benchmarks/results/threads.md``).

So by default LAM follows the machine: :func:`available_cpus` (the affinity mask, capped by the
cgroup quota) is the ceiling, and while it works, :func:`adapt` (called between segments, at
most every ``ADAPT_EVERY_S``) lowers the threads to the cores that other processes leave free
(``/proc/loadavg``'s runnable count minus this process's running threads) and raises them
again when those processes finish. An explicit count (``LAM(threads=N)``, ``--threads N``,
``OMP_NUM_THREADS``) turns this off. Threads are process-wide (torch has one intra-op pool).
"""

from __future__ import annotations

import math
import os
import time
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


ADAPT_EVERY_S = 0.5
_adaptive = {"ceiling": None, "checked": 0.0}  # ceiling None: the threads were set explicitly


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads; returns the count in effect.

    ``threads=None``: at most :func:`available_cpus` (torch's default is lowered, never raised),
    then :func:`adapt` follows the cores other processes leave free; left alone when
    ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set. An int is applied as given, and stays.
    """
    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        _adaptive["ceiling"] = None
        torch.set_num_threads(threads)
    elif os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        _adaptive["ceiling"] = None
    else:
        previous = _adaptive["ceiling"]  # set by an earlier call: adapt() may have lowered torch's count since
        current = torch.get_num_threads() if previous is None else max(previous, torch.get_num_threads())
        ceiling = min(current, available_cpus())
        _adaptive["ceiling"] = ceiling
        torch.set_num_threads(ceiling)
    return torch.get_num_threads()


def busy_elsewhere() -> int | None:
    """Threads of other processes running or ready to run right now (None without /proc)."""
    try:
        with open("/proc/loadavg") as f:
            runnable = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    ours = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # a thread that just ended
            continue
        ours += text[text.rfind(")") + 2 : text.rfind(")") + 3] == "R"
    return max(0, runnable - ours)


def adapt() -> int:
    """Under the default setting, fit the threads to the cores other processes leave free
    (checked at most every ``ADAPT_EVERY_S``); returns the threads in effect."""
    ceiling = _adaptive["ceiling"]
    now = time.monotonic()
    if ceiling is None or (ceiling == 1 and torch.get_num_threads() == 1) or now - _adaptive["checked"] < ADAPT_EVERY_S:
        return torch.get_num_threads()
    _adaptive["checked"] = now
    samples = [busy_elsewhere() for _ in range(3)]
    if None in samples:
        return torch.get_num_threads()
    free = (os.cpu_count() or 1) - sorted(samples)[1]  # the median of three snapshots
    threads = max(1, min(ceiling, free))
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads
