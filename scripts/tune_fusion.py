"""Choose the fusion weights on dev data only: ``python scripts/tune_fusion.py``.

Dev sets: QMSum val (both query variants), synthetic passkey / needle sets generated with
``DEV_SEED`` (never the evaluation seed) and L-Eval's eleven kinds of long documents (questions
and reference outputs, as ``lam eval --suite genres``; for choosing only). Every document's four
signals are computed once; then each weight triple on a grid is scored. The winner is the triple
with the best mean over five dev groups (QMSum query, QMSum answer, passkey, needle, and the mean
of the L-Eval kinds) among those that meet the search floors on the dev data: every QMSum variant
at least BM25 alone + 5 nDCG@10, every L-Eval kind at least BM25 alone (BM25 scored on the same
splits), passkey and needle 100. Only when no triple meets them does the best mean win outright
(the record says so). Only the ratios matter (the fused ranking is unchanged by
scaling all weights), so the lexical weight is fixed to 1. The record goes to
``results/retrieval/fusion-dev.{json,md}``; ``--from-record`` re-chooses from a saved grid
without recomputing the signals.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

from lam.evaluation.datasets import load_leval, load_qmsum
from lam.evaluation.encoders import BM25, LAMSearch
from lam.evaluation.metrics import ndcg_at_k
from lam.evaluation.runner import score_retrieval
from lam.evaluation.synthetic import EVAL_SEED, needle_split, passkey_split
from lam.retrieval.fusion import SIGNALS, FusionWeights, fuse

DEV_SEED = 1
DEV_LENGTHS = (512, 2048, 8192)
LEVAL = "leval/"  # group prefix of an L-Eval kind; the kinds count as one group in the mean
BM25_MARGIN = 5.0  # the search floor: the engine must beat BM25 alone by 5 nDCG@10 on QMSum
PASSAGE_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
DOCUMENT_GRID = (0.0, 0.125, 0.25, 0.5, 1.0)
DOCUMENT_LEXICAL_GRID = (0.0, 0.125, 0.25, 0.5, 0.75, 1.0)


def dev_splits(lengths=DEV_LENGTHS, seed: int = DEV_SEED):
    """(group, split) pairs of the dev data."""
    if seed == EVAL_SEED:
        raise ValueError("tuning on the evaluation seed is not allowed")
    for variant in ("query", "answer"):
        yield f"qmsum-{variant}", load_qmsum(variant)
    for length in lengths:
        yield "passkey", passkey_split(length, seed=seed)
    for length in lengths:
        yield "needle", needle_split(length, seed=seed)
    for variant in ("question", "reference"):
        for split in load_leval(variant):
            yield f"{LEVAL}{split.info['genre']}", split


def signals(retriever: LAMSearch, split) -> tuple[dict[str, np.ndarray], list[str], list[set[str]]]:
    doc_ids, qids = list(split.corpus), list(split.queries)
    comps = retriever.components([split.queries[q] for q in qids], [split.corpus[d] for d in doc_ids])
    return comps, doc_ids, [split.qrels[q] for q in qids]


def grid_search(dev: list[tuple[str, str, dict, list[str], list[set[str]], int]]) -> list[dict]:
    """Every weight triple's score per dev split and per group, best mean first."""
    rows = []
    for wp, wd, wl in itertools.product(PASSAGE_GRID, DOCUMENT_GRID, DOCUMENT_LEXICAL_GRID):
        weights = FusionWeights(passage=wp, document=wd, lexical=1.0, document_lexical=wl)
        per_split, per_group = {}, {}
        for group, name, comps, doc_ids, relevant, k in dev:
            fused = fuse(comps, weights)
            per_split[name] = 100 * ndcg_at_k(fused, doc_ids, relevant, k)
            per_group.setdefault(group, []).append(per_split[name])
        groups = {g: float(np.mean(v)) for g, v in per_group.items()}
        rows.append({"weights": weights.as_dict(), "mean": headline_mean(groups), "groups": groups})
        rows[-1]["splits"] = per_split
    rows.sort(key=lambda r: -r["mean"])  # stable: ties keep grid order (smaller weights first)
    return rows


def headline_mean(groups: dict[str, float]) -> float:
    """The mean over the dev groups, the L-Eval kinds first averaged into one."""
    kinds = [v for g, v in groups.items() if g.startswith(LEVAL)]
    rest = [v for g, v in groups.items() if not g.startswith(LEVAL)]
    return float(np.mean(rest + ([float(np.mean(kinds))] if kinds else [])))


def dev_floors(splits) -> dict[str, float]:
    """The search floors on the dev groups of ``splits`` ((group, split) pairs): QMSum variants
    ≥ BM25 alone + 5, each L-Eval kind ≥ BM25 alone (the mean of its variants), passkey and
    needle 100."""
    floors = {"passkey": 100.0, "needle": 100.0}
    kinds: dict[str, list[float]] = {}
    bm25 = BM25()
    for group, split in splits:
        if group.startswith("qmsum"):
            floors[group] = score_retrieval(bm25, split)[split.main_metric] + BM25_MARGIN
        elif group.startswith(LEVAL):
            kinds.setdefault(group, []).append(score_retrieval(bm25, split)[split.main_metric])
    return floors | {g: float(np.mean(v)) for g, v in kinds.items()}


def choose(rows: list[dict], floors: dict[str, float]) -> tuple[dict, bool]:
    """The best-mean row (``rows`` come best mean first) meeting every floor; else rows[0]."""
    for row in rows:
        if all(row["groups"][g] >= floor - 1e-9 for g, floor in floors.items() if g in row["groups"]):
            return row, True
    return rows[0], False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/retrieval", help="folder for fusion-dev.json and .md")
    parser.add_argument("--model", default=None, help="model folder (default: the bundled weights)")
    parser.add_argument("--from-record", default=None, help="a fusion-dev.json whose grid to choose from again")
    args = parser.parse_args(argv)
    start = time.time()
    if args.from_record:
        record = json.loads(Path(args.from_record).read_text())
        record["floors"] = dev_floors(dev_splits(lengths=()))
        record["best"], record["floors_met"] = choose(record["grid"], record["floors"])
        write_record(record, Path(args.out))
        return
    splits = list(dev_splits())
    floors = dev_floors(splits)
    retriever = LAMSearch(args.model, show_progress=True)
    dev, singles = [], {}
    for group, split in splits:
        comps, doc_ids, relevant = signals(retriever, split)
        k = 10 if split.main_metric == "ndcg_at_10" else 1
        dev.append((group, split.name, comps, doc_ids, relevant, k))
        singles[split.name] = {s: 100 * ndcg_at_k(comps[s], doc_ids, relevant, k) for s in comps}
        print(split.name, {s: round(v, 2) for s, v in singles[split.name].items()}, flush=True)
    rows = grid_search(dev)
    best, met = choose(rows, floors)
    record = {
        "dev_seed": DEV_SEED,
        "dev_lengths": list(DEV_LENGTHS),
        "model": retriever.info,
        "signals_alone": singles,
        "floors": floors,
        "floors_met": met,
        "best": best,
        "grid": rows,
        "seconds": round(time.time() - start, 1),
    }
    write_record(record, Path(args.out))


def write_record(record: dict, out: Path) -> None:
    """fusion-dev.json, and fusion-dev.md: the floors, the chosen row, then the 10 best means."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "fusion-dev.json").write_text(json.dumps(record, indent=2))
    best, rows = record["best"], record["grid"]
    floors = ", ".join(f"{g} ≥ {v:.2f}" for g, v in record["floors"].items())
    lines = [f"Search floors (on dev): {floors}; met by the chosen row: {record['floors_met']}.", ""]
    lines.append("| " + " | ".join(SIGNALS) + " | mean | " + " | ".join(best["groups"]) + " |")
    lines.append("|" + "---:|" * (len(SIGNALS) + 1 + len(best["groups"])))
    for r in [best] + [r for r in rows[:10] if r != best]:
        cells = [f"{r['weights'][s]:g}" for s in SIGNALS] + [f"{r['mean']:.2f}"]
        lines.append("| " + " | ".join(cells + [f"{v:.2f}" for v in r["groups"].values()]) + " |")
    floor_cells = [f"{record['floors'][g]:.2f}" if g in record["floors"] else "" for g in best["groups"]]
    lines.append("| floor | | | | | " + " | ".join(floor_cells) + " |")
    lines.append("")
    lines.append("First row: the chosen weights; then the best means of the grid; last, each group's floor.")
    (out / "fusion-dev.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"best: {best['weights']} ({record['seconds']} s)")


if __name__ == "__main__":
    main()
