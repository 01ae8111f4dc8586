"""Output precision of embeddings, as in sentence-transformers' ``quantize_embeddings``.

``int8`` / ``uint8`` map each dimension's [min, max] over the batch to 256 levels
(a batch of one is mapped over its own range); ``binary`` / ``ubinary`` keep the sign bit,
packed 8 dimensions to a byte (``binary`` as int8 offset by −128, ``ubinary`` as uint8).
"""

from __future__ import annotations

import numpy as np

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def quantize_embeddings(embeddings: np.ndarray, precision: str) -> np.ndarray:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "float32":
        return embeddings.astype(np.float32, copy=False)
    if precision in ("binary", "ubinary"):
        packed = np.packbits(embeddings > 0, axis=-1)
        return (packed.astype(np.int16) - 128).astype(np.int8) if precision == "binary" else packed
    lo, hi = embeddings.min(axis=0), embeddings.max(axis=0)
    steps = (hi - lo) / 255.0
    steps[steps == 0] = 1.0
    levels = np.clip(np.round((embeddings - lo) / steps), 0, 255)
    return (levels - 128).astype(np.int8) if precision == "int8" else levels.astype(np.uint8)
