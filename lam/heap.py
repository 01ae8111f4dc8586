"""Give freed heap memory back to the OS during long loops that allocate as they go.

Indexing a long document interleaves the encoder's per-segment tensors (freed every step,
100 KB to a few MB) with small blocks that live on (SQLite pages, FTS5 terms, passage rows).
glibc serves the small blocks from the holes the tensors leave, so the next step's tensors no
longer fit there and the heap grows: measured on this machine, indexing one document grew the
process by about 2.5 KB per token (300 MB at 120K tokens) while the live data stayed bounded.
Running the encoder on its own thread (its own malloc arena, see
:func:`lam.runner.pooled_sums_in_thread`) slows this down; trimming every few segments
bounds it (``benchmarks/bench_retrieval.py`` measures peak RSS growth up to 1M tokens).
``malloc_trim`` exists only in glibc; elsewhere :func:`release_free_memory` does nothing.

A server is the other case: requests of every size come and go for days. glibc raises its
mmap threshold each time a large block is freed, so later large blocks (a batch's activations,
tens of MB) come from the heap and stay there; :func:`fix_mmap_threshold`, called before the
model is loaded, keeps blocks above a fixed size in their own mappings, returned on free
(``benchmarks/bench_server.py``: RSS growth of a loaded server 206 MB → 44 MB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _libc_function(name: str, argtypes: tuple, restype=ctypes.c_int):
    """glibc's ``name`` with its C signature, or None (musl, macOS, Windows: no such function)."""
    libc = ctypes.util.find_library("c")
    try:
        fn = getattr(ctypes.CDLL(libc), name) if libc else None
    except (OSError, AttributeError):
        return None
    if fn is not None:
        fn.argtypes = list(argtypes)
        fn.restype = restype
    return fn


def _malloc_trim():
    return _libc_function("malloc_trim", (ctypes.c_size_t,))


def release_free_memory() -> bool:
    """Return the free pages of every malloc arena to the OS; True if glibc did (it can)."""
    trim = _malloc_trim()
    return trim is not None and trim(0) == 1


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def _mallopt():
    return _libc_function("mallopt", (ctypes.c_int, ctypes.c_int))


def fix_mmap_threshold(nbytes: int = 128 << 10) -> bool:
    """Serve every block of ``nbytes`` or more from its own mapping, for the life of the
    process (this also stops glibc's dynamic threshold). True if glibc took it."""
    mallopt = _mallopt()
    return mallopt is not None and mallopt(M_MMAP_THRESHOLD, nbytes) == 1
