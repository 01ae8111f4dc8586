"""Training text, as token windows, from ../shared/data (never a test split of an eval set).

Sources: Project Gutenberg books and the WikiText-103 train prefix (long documents) and the
Paul Graham essays; the short pair sets (STS-B train, SICK train, SNLI dev) are not used yet
(an optional stage 3 would use them). Documents are
assigned to train / held-out by a hash of their id, so the held-out windows used to report
512-token fidelity never appear in training.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterator

from lam.evaluation.data_paths import require
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
        # One random slice per document (whole words): cheap to tokenise, and not always the
        # opening pages (Gutenberg books start with licence boilerplate).
        start = rng.randrange(0, max(1, len(text) - slice_chars))
        if start:
            start = text.find(" ", start) + 1
        ids = [i for piece in segmenter.iter_body_ids(text[start : start + slice_chars]) for i in piece]
        if len(ids) < n_tokens:
            continue
        starts = sorted(rng.sample(range(len(ids) - n_tokens + 1), min(per_doc, len(ids) - n_tokens + 1)))
        for s in starts:
            yield ids[s : s + n_tokens]
