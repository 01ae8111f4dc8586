"""Training text, as token windows, from ../shared/data (never a test split of an eval set).

Sources: Project Gutenberg books and the WikiText-103 train prefix (long documents). Documents are
assigned to train / held-out by a hash of their id, so the held-out windows used to report
512-token fidelity never appear in training. QMSum's train split (meetings with real queries,
their answers and the transcript turns they come from) gives query → document pairs.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

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


@dataclass
class QueryWindow:
    """A window of one meeting's transcript that holds the turns a query is about."""

    meeting: str
    ids: list[int]  # body ids, exactly the requested length
    query: str
    answer: str


def _meeting_turns(segmenter: TextSegmenter, transcript: str) -> tuple[list[int], list[int]]:
    """Body ids of a transcript and where each turn (line) starts in them."""
    lines = transcript.split("\n")
    ids, starts = [], []
    for turn in segmenter.body_ids_batch(lines):  # ids do not cross whitespace: lines tokenise alone
        starts.append(len(ids))
        ids += turn
    return ids, [*starts, len(ids)]


def _span_tokens(spans: list[list[int]], starts: list[int]) -> list[tuple[int, int]]:
    """Inclusive turn ranges → half-open token ranges."""
    last = len(starts) - 2
    spans = [(int(a), int(b)) for a, b in spans]
    return [(starts[min(a, last)], starts[min(b, last) + 1]) for a, b in spans if a <= b]


def meeting_query_windows(
    segmenter: TextSegmenter, n_tokens: int, per_meeting: int = 2, seed: int = 0, split: str = "train"
) -> Iterator[list[QueryWindow]]:
    """Groups of ``per_meeting`` windows of ``n_tokens`` ids, one group per QMSum meeting (in a
    seeded order), each window holding the relevant turns of a different query of the meeting.

    A window holds its query's first relevant span (or, when the span is longer than the window,
    lies inside it) at a random offset, and no turn of the other queries' spans in the group, so
    the windows of one meeting are each other's hard negatives: same speakers and subject,
    different discussion. Queries without a span (about the whole meeting) are not used.
    """
    rng = random.Random(seed)
    meetings = []
    with open(require(f"qmsum/{split}.jsonl"), encoding="utf-8") as f:
        for line in f:
            meeting = json.loads(line)
            ids, starts = _meeting_turns(segmenter, meeting["transcript"])
            if len(ids) < per_meeting * n_tokens:
                continue
            queries = []
            for info in meeting["query_info"]:
                spans = info["relevant_text_span"]  # a list, or that list as a JSON string
                spans = _span_tokens(json.loads(spans) if isinstance(spans, str) else spans, starts)
                if spans:
                    queries.append((info["query"], info["answer"], spans))
            if len(queries) >= per_meeting:
                meetings.append((meeting["id"], ids, queries))
    rng.shuffle(meetings)
    for meeting_id, ids, queries in meetings:
        group = _window_group(ids, queries, n_tokens, per_meeting, rng)
        if group:
            yield [QueryWindow(meeting_id, ids[s : s + n_tokens], q, a) for s, (q, a) in group]


def _overlaps(x: tuple[int, int], y: tuple[int, int]) -> bool:
    """Whether half-open ranges x and y share a position."""
    return x[0] < y[1] and y[0] < x[1]


def _window_group(ids, queries, n_tokens, per_meeting, rng, tries: int = 20):
    """``per_meeting`` (window start, query) pairs whose windows overlap neither each other nor
    the others' spans; None if ``tries`` random draws find none."""
    for _ in range(tries):
        picked = rng.sample(queries, per_meeting)
        starts = []
        for _, _, spans in picked:
            a, b = spans[0]
            if b - a >= n_tokens:
                lo = hi = a + rng.randrange(b - a - n_tokens + 1)
            else:
                lo, hi = max(0, b - n_tokens), a
            starts.append(min(rng.randint(lo, max(lo, hi)), len(ids) - n_tokens))
        windows = [(s, s + n_tokens) for s in starts]
        clash = any(
            _overlaps(windows[i], span)
            for i in range(per_meeting)
            for j in range(per_meeting)
            if i != j
            for span in [windows[j], *picked[j][2]]
        )
        if not clash:
            return [(s, (q, a)) for s, (q, a, _) in zip(starts, picked)]
    return None
