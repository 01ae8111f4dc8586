"""lam.heap on glibc: a fixed mmap threshold gives freed large blocks back at once."""

import subprocess
import sys

import pytest

from lam.heap import _mallopt

PROBE = """
import numpy as np
from lam.heap import fix_mmap_threshold
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) // 1024
if {fix}:
    assert fix_mmap_threshold()
base = rss()
for _ in range(3):  # freed, then asked for again: glibc's dynamic threshold moves it onto the heap
    block = np.ones(20 << 20, dtype=np.uint8)
    del block
print(rss() - base)
"""


@pytest.mark.skipif(_mallopt() is None or not sys.platform.startswith("linux"), reason="glibc only")
def test_fixed_threshold_returns_large_blocks():
    def growth(fix: bool) -> int:
        out = subprocess.run([sys.executable, "-c", PROBE.format(fix=fix)], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    assert growth(False) >= 15  # the default keeps the freed 20 MB block (the test can fail)
    assert growth(True) <= 2
