"""Give freed heap memory back to the OS during long loops that allocate as they go.

Indexing a long document interleaves the encoder's per-segment tensors (freed every step,
100 KB to a few MB) with small blocks that live on (SQLite pages, FTS5 terms, passage rows).
glibc serves the small blocks from the holes the tensors leave, so the next step's tensors no
longer fit there and the heap grows: measured on this machine, indexing one document grew the
process by about 2.5 KB per token (300 MB at 120K tokens) while the live data stayed bounded.
Running the encoder on its own thread (its own malloc arena, see
:func:`lam.documents.pooled_sums_in_thread`) slows this down; trimming every few segments
bounds it (``benchmarks/bench_retrieval.py`` measures peak RSS growth up to 1M tokens).
``malloc_trim`` exists only in glibc; elsewhere :func:`release_free_memory` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return None
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
        trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the free pages of every malloc arena to the OS; True if glibc did (it can)."""
    trim = _malloc_trim()
    return trim is not None and trim(0) == 1
