"""Record or compare the bundled model's outputs on a fixed set of texts and searches.

A refactor that must not change the model runs this before (``record``) and after (``compare``):
embeddings of short and long texts (up to ~100K tokens, generated, no data needed) through
``encode`` and ``stream``, and the rankings and passages of searches over an index of them.

    python scripts/check_outputs.py record outputs-before.npz
    python scripts/check_outputs.py compare outputs-before.npz   # exit 1 on any difference
"""

from __future__ import annotations

import argparse
import json
import random
import sys

import numpy as np

SHORT = [
    "",
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "The cat sat on the mat.",
    "Stocks fell sharply on Monday after the central bank raised interest rates.",
    "Who approved the budget for the new library?",
    "¿Dónde está la estación de tren?",
    "naïve café déjà vu — 東京 🚀",
]
WORDS = (
    "the a of and to in is was for on that with as by at from it this be are were which an or have has "
    "meeting budget project design remote control battery market report committee river mountain city "
    "engineer teacher student village garden winter summer history science music painting ocean harbour "
    "decided approved rejected discussed proposed suggested argued explained measured planned built "
    "quickly slowly carefully finally however although because therefore meanwhile"
).split()


def generated_text(n_words: int, seed: int) -> str:
    """Deterministic pseudo-prose of ``n_words`` words (about 1.1 tokens each)."""
    rng = random.Random(seed)
    sentences, words = [], 0
    while words < n_words:
        k = rng.randint(6, 18)
        sentence = " ".join(rng.choice(WORDS) for _ in range(k))
        sentences.append(sentence.capitalize() + ".")
        words += k
    return " ".join(sentences)


def texts() -> dict[str, str]:
    out = {f"short-{i}": t for i, t in enumerate(SHORT)}
    for n in (200, 450, 900, 3000, 12000):
        out[f"prose-{n}"] = generated_text(n, seed=n)
    fact = "The secret launch code of the harbour committee is 73915. "
    out["needle-8k"] = generated_text(3500, 1) + " " + fact + generated_text(3500, 2)
    out["repeated"] = ("The meeting is adjourned. " * 400) + generated_text(600, 3)
    out["long-100k"] = generated_text(90000, seed=7)
    return out


QUERIES = [
    "what is the secret launch code?",
    "who approved the budget?",
    "a man playing music",
    "the committee discussed the river and the mountain village",
    "winter garden painting",
]


def outputs() -> tuple[dict[str, np.ndarray], dict]:
    from lam import LAM

    model = LAM()
    docs = texts()
    names = list(docs)
    emb = model.encode([docs[n] for n in names], batch_size=4)
    arrays = {f"encode/{n}": e for n, e in zip(names, emb)}
    for n in ("prose-3000", "needle-8k"):
        stream = model.stream()
        text = docs[n]
        for i in range(0, len(text), 997):
            stream.feed(text[i : i + 997])
        arrays[f"stream/{n}"] = stream.embedding()
    index = model.open_index(":memory:")
    index.index_many([(n, docs[n]) for n in names if docs[n]], show_progress_bar=False)
    searches = {}
    for q in QUERIES:
        hits = model.search(q, top_k=8)
        searches[q] = [[h.doc_id, h.start, h.end, h.passage_index] for h in hits]
        arrays[f"scores/{q}"] = np.array([h.score for h in hits], dtype=np.float64)
    return arrays, searches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["record", "compare"])
    parser.add_argument("path")
    parser.add_argument("--atol", type=float, default=1e-6)
    args = parser.parse_args()
    arrays, searches = outputs()
    if args.mode == "record":
        np.savez(args.path, searches=np.array(json.dumps(searches)), **arrays)
        print(f"recorded {len(arrays)} arrays and {len(searches)} searches to {args.path}")
        return 0
    before = np.load(args.path)
    worst, failures = 0.0, []
    for key, value in arrays.items():
        if key.startswith("scores/"):
            continue
        diff = float(np.abs(before[key] - value).max())
        worst = max(worst, diff)
        if diff > args.atol:
            failures.append(f"{key}: max |Δ| {diff:.2e}")
    old_searches = json.loads(str(before["searches"]))
    for q, ranking in searches.items():
        if old_searches[q] != ranking:
            failures.append(f"search {q!r}: ranking or passages differ: {old_searches[q]} vs {ranking}")
    n_emb = sum(not k.startswith("scores/") for k in arrays)
    print(f"{n_emb} embeddings: max |Δ| {worst:.2e} (tolerance {args.atol:g})")
    same = len(searches) - sum(f.startswith("search") for f in failures)
    print(f"{len(searches)} searches (top 8: doc ids and passage offsets): {same} identical")
    for f in failures:
        print("DIFFERS", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
