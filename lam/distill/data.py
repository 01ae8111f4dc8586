"""Training text, as token windows, from ../shared/data (never a test split of an eval set).

Sources: Project Gutenberg books and the WikiText-103 train prefix (long documents). Documents are
assigned to train / held-out by a hash of their id, so the held-out windows used to report
512-token fidelity never appear in training.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterator

from lam.data_paths import require
from lam.tokenization import TextSegmenter


def _held_out(doc_id: str, fraction: float = 0.05) -> bool:
    return int(hashlib.sha256(doc_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def long_documents(split: str = "train") -> Iterator[tuple[str, str]]:
    """(doc_id, text) of the long-document sources, filtered to ``split`` ("train" / "heldout")."""
    want_held_out = split == "heldout"
    for name in ("gutenberg.jsonl.gz", "wikitext103_tokenized_train_prefix.jsonl.gz"):
        with gzip.open(require(f"longdocs/{name}"), "rt", encoding="utf-8") as f:
            for i, line in enumerate(f):
                record = json.loads(line)
                doc_id = f"{name}:{record.get('id', i)}"
                if _held_out(doc_id) == want_held_out and len(record["text"]) > 2000:
                    yield doc_id, record["text"]
    for path in sorted(require("pg_essays").glob("*.txt")):
        doc_id = f"pg:{path.stem}"
        if _held_out(doc_id) == want_held_out:
            yield doc_id, path.read_text(encoding="utf-8")


def _slice_ids(segmenter: TextSegmenter, text: str, rng: random.Random, slice_chars: int) -> list[int]:
    """Body ids of one random slice of ``text`` (whole words): cheap to tokenise, and not always
    the opening pages (Gutenberg books start with licence boilerplate)."""
    start = rng.randrange(0, max(1, len(text) - slice_chars))
    if start:
        start = text.find(" ", start) + 1
    return [i for piece in segmenter.iter_body_ids(text[start : start + slice_chars]) for i in piece]


def token_windows(
    segmenter: TextSegmenter,
    n_tokens: int,
    split: str = "train",
    seed: int = 0,
    per_doc: int = 8,
    slice_chars: int = 60_000,
) -> Iterator[list[int]]:
    """Random windows of exactly ``n_tokens`` body ids, up to ``per_doc`` per document."""
    rng = random.Random(seed)
    for _, text in long_documents(split):
        ids = _slice_ids(segmenter, text, rng, slice_chars)
        if len(ids) < n_tokens:
            continue
        starts = sorted(rng.sample(range(len(ids) - n_tokens + 1), min(per_doc, len(ids) - n_tokens + 1)))
        for s in starts:
            yield ids[s : s + n_tokens]


def sibling_windows(
    segmenter: TextSegmenter,
    n_tokens: int,
    siblings: int,
    split: str = "train",
    seed: int = 0,
    slice_chars: int = 60_000,
) -> Iterator[list[list[int]]]:
    """``siblings`` non-overlapping windows of ``n_tokens`` body ids from one document at a time.

    Windows of one book are the hard negatives of the "cloze" stage: the same author, names and
    style, different pages (as meetings of one series differ in what was discussed). They never
    overlap, so no window holds another's passage.
    """
    rng = random.Random(seed)
    for _, text in long_documents(split):
        ids = _slice_ids(segmenter, text, rng, slice_chars)
        n_windows = len(ids) // n_tokens
        if n_windows < siblings:
            continue
        picked = sorted(rng.sample(range(n_windows), siblings))
        yield [ids[w * n_tokens : (w + 1) * n_tokens] for w in picked]


def random_span(window: list[int], length: int, rng: random.Random, continuation: frozenset[int]) -> list[int]:
    """A span of ``length`` ids of ``window`` starting at a random word start."""
    p = _word_start(window, len(window) - length, rng, continuation)
    return window[p : p + length]


def _word_start(ids: list[int], last: int, rng: random.Random, continuation: frozenset[int]) -> int:
    """A random position in 0…``last`` where a word starts (any position if none does)."""
    starts = [p for p in range(last + 1) if p == len(ids) or ids[p] not in continuation]
    return rng.choice(starts or range(last + 1))


def continuation_ids(segmenter: TextSegmenter) -> frozenset[int]:
    """Ids of WordPiece continuation pieces ("##…"): positions where a word does not start."""
    return frozenset(i for token, i in segmenter.tokenizer.get_vocab().items() if token.startswith("##"))
