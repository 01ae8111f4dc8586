"""Speed of a loaded model on this machine (``lam bench``): texts/s, tokens/s, one long text.

These are quick, self-contained measurements a user can run anywhere with the options they
will use. The side-by-side comparison with sentence-transformers, the 1M-token runs in fresh
processes and the machine's arithmetic limit are in ``benchmarks/bench_core.py``.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lam.encoder import LAM


def synthetic_sentences(model: LAM, n: int, seed: int = 0, words: tuple[int, int] = (6, 30)) -> list[str]:
    """``n`` sentences of whole vocabulary words (alphabetic, no ## pieces), seeded."""
    vocab = sorted(w for w in model.tokenizer.get_vocab() if w.isalpha() and w.islower() and len(w) > 2)
    rng = random.Random(seed)
    return [" ".join(rng.choices(vocab, k=rng.randint(*words))) + "." for _ in range(n)]


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def measure_texts(
    model: LAM, texts: list[str], batch_size: int = 32, output_dim: int | None = None, repeats: int = 2
) -> dict[str, Any]:
    """Best of ``repeats`` timed ``encode`` calls over all ``texts`` (after a warm-up)."""
    tokens = sum(model.count_tokens(t) for t in texts)
    model.encode(texts[: 2 * batch_size], batch_size=batch_size, output_dim=output_dim)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.encode(texts, batch_size=batch_size, output_dim=output_dim)
        best = min(best, time.perf_counter() - start)
    return {
        "texts": len(texts),
        "tokens": tokens,
        "batch_size": batch_size,
        "seconds": best,
        "texts_per_s": len(texts) / best,
        "tokens_per_s": tokens / best,
    }


def measure_long_text(model: LAM, n_tokens: int, seed: int = 0) -> dict[str, Any]:
    """One synthetic text of ``n_tokens`` tokens, streamed: seconds, tokens/s, peak RSS."""
    stream = model.stream(max_tokens=n_tokens)
    pieces = synthetic_sentences(model, 512, seed=seed)
    start = time.perf_counter()
    k = 0
    while stream.tokens < n_tokens:
        stream.feed(" ".join(pieces[k % len(pieces) : k % len(pieces) + 32]) + " ")
        k += 32
    stream.embedding()
    seconds = time.perf_counter() - start
    return {
        "tokens": stream.tokens,
        "seconds": seconds,
        "tokens_per_s": stream.tokens / seconds,
        "peak_rss_mb": _peak_rss_mb(),
    }
