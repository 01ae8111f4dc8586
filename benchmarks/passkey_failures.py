"""Passkey dev: which documents wrongly come first, by where their inserted sentence sits.

    python benchmarks/passkey_failures.py --tag shipped --tag cloze-330-polish

Reads the per-segment sums that ``redundancy_gate.collect`` cached for each tag (run
``redundancy_gate.py`` or ``passkey_paired.py`` for the model first), pools them with the
default gate (τ 0.15, p 3) and, per length, reports how often the wrongly top-ranked document
is one whose inserted sentence lies in its first segment. The segment is found without reading
the words: the haystack repeats, so after the first segment only the segment holding the
inserted sentence brings token bigrams the document has not shown yet.

Writes results/distill/passkey-failures.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
from lexical_gate import bigram_novelty
from redundancy_gate import CACHE, DEV_LENGTHS, pooled_documents

from lam import LAM
from lam.evaluation.synthetic import synthetic_splits
from lam.retrieval.tuning import DEV_SEED

OUT = Path(__file__).resolve().parents[1] / "results" / "distill"


def inserted_segment(bodies: list[list[int]]) -> int:
    """Index of the first segment after the first that brings unseen bigrams (0 if none does)."""
    return next((s for s, novelty in enumerate(bigram_novelty(bodies)) if s and novelty > 0), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", action="append", required=True, help="a cache name of redundancy_gate.collect")
    args = parser.parse_args()
    segmenter = LAM(None).segmenter
    splits = {s.name: s for s in synthetic_splits("passkey", DEV_LENGTHS[1:], seed=DEV_SEED)}
    where = {
        name: [inserted_segment(list(segmenter.text_segments(text))) for text in split.corpus.values()]
        for name, split in splits.items()
    }
    record: dict = {"dev_seed": DEV_SEED, "models": {}}
    lines = [
        "Passkey dev (seed 1): nDCG@1, and the share of wrong first-ranked documents whose inserted "
        "sentence is in their first segment (gate τ 0.15, p 3)",
        "",
        "| model | " + " | ".join(f"{n.split('/')[1]}: acc / wrong tops early" for n in splits) + " |",
        "|---|" + "---:|" * len(splits),
    ]
    for tag in args.tag:
        data = pickle.loads((CACHE / f"{tag}-passkey.pkl").read_bytes())
        rows, cells = {}, []
        for name in splits:
            d = data[name]
            early = np.array(where[name]) == 0  # corpus order is the cache's doc order
            assert list(splits[name].corpus) == d["doc_ids"]
            docs = pooled_documents(d, 0.15, 3.0)
            ((queries, relevant),) = d["q"].values()
            top = (queries @ docs.T).argmax(1)
            index = {doc: i for i, doc in enumerate(d["doc_ids"])}
            gold = np.array([index[next(iter(r))] for r in relevant])
            wrong = top != gold
            share = float(early[top[wrong]].mean()) if wrong.any() else 0.0
            rows[name] = {
                "acc": 100 * float((~wrong).mean()),
                "wrong_tops_early": 100 * share,
                "early_docs": 100 * float(early.mean()),
            }
            cells.append(f"{rows[name]['acc']:.0f} / {100 * share:.0f}%")
        record["models"][tag] = rows
        lines.append(f"| {tag} | " + " | ".join(cells) + " |")
    early_docs = ", ".join(f"{n.split('/')[1]} {100 * np.mean(np.array(w) == 0):.0f}%" for n, w in where.items())
    lines += ["", f"Documents with the sentence in their first segment: {early_docs}."]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "passkey-failures.json").write_text(json.dumps(record, indent=2) + "\n")
    (OUT / "passkey-failures.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
