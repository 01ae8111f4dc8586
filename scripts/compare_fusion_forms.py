"""Compare three fusion forms on the fusion dev data: ``python scripts/compare_fusion_forms.py``.

Forms: the linear mix of z-scores (shipped), weighted reciprocal-rank fusion
Σ w / (60 + rank) with ties at their mean rank, and a linear mix of min-max-scaled scores; each
over the weight grid of ``scripts/tune_fusion.py`` and scored against its dev floors. Writes
``docs/research/records/retrieval/fusion-forms.{json,md}``. ``--signals F`` caches the dev
signals (about 11 min to compute on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from tune_fusion import DOCUMENT_GRID, DOCUMENT_LEXICAL_GRID, LEVAL, PASSAGE_GRID, dev_floors, dev_splits, headline_mean

from lam.evaluation.encoders import LAMSearch
from lam.evaluation.metrics import ndcg_at_k
from lam.retrieval.fusion import SIGNALS, standardise


def minmax(s: np.ndarray) -> np.ndarray:
    lo, hi = s.min(-1, keepdims=True), s.max(-1, keepdims=True)
    return np.where(hi - lo > 1e-12, (s - lo) / np.maximum(hi - lo, 1e-12), 0.0)


def reciprocal_rank(s: np.ndarray) -> np.ndarray:
    return 1.0 / (60.0 + rankdata(-s, axis=-1, method="average"))


FORMS = {"z-score": standardise, "reciprocal-rank": reciprocal_rank, "min-max": minmax}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signals", default=None, help="pickle caching the dev signals")
    parser.add_argument("--out", default="docs/research/records/retrieval")
    args = parser.parse_args()
    splits = list(dev_splits())
    floors = dev_floors(splits)
    if args.signals and Path(args.signals).exists():
        dev = pickle.loads(Path(args.signals).read_bytes())
    else:
        engine, dev = LAMSearch(None), []
        for group, split in splits:
            qids, doc_ids = list(split.queries), list(split.corpus)
            comps = engine.components([split.queries[q] for q in qids], [split.corpus[d] for d in doc_ids])
            k = 10 if split.main_metric == "ndcg_at_10" else 1
            dev.append(
                {"group": group, "comps": comps, "doc_ids": doc_ids, "relevant": [split.qrels[q] for q in qids], "k": k}
            )
        if args.signals:
            Path(args.signals).write_bytes(pickle.dumps(dev))
    rows = []
    for form, scale in FORMS.items():
        scaled = [{s: scale(d["comps"][s]) for s in SIGNALS} for d in dev]
        for wp, wd, wl in itertools.product(PASSAGE_GRID, DOCUMENT_GRID, DOCUMENT_LEXICAL_GRID):
            w = {"passage": wp, "document": wd, "lexical": 1.0, "document_lexical": wl}
            per: dict[str, list[float]] = {}
            for d, z in zip(dev, scaled):
                fused = sum(w[s] * z[s] for s in SIGNALS)
                per.setdefault(d["group"], []).append(100 * ndcg_at_k(fused, d["doc_ids"], d["relevant"], d["k"]))
            groups = {g: float(np.mean(v)) for g, v in per.items()}
            short = {g: round(groups[g] - f, 2) for g, f in floors.items() if groups[g] < f - 1e-9}
            rows.append(
                {"form": form, "weights": w, "mean": headline_mean(groups), "below_floor": short, "groups": groups}
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fusion-forms.json").write_text(json.dumps({"floors": floors, "rows": rows}, indent=2))
    lines = [
        "Each form's best mean, and its best mean with the fewest groups below their floors",
        f"(floors: {', '.join(f'{g} ≥ {v:.2f}' for g, v in floors.items())}).",
        "",
        "| form | passage | document | document_lexical | mean | groups below floor | meets every floor |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for form in FORMS:
        mine = sorted((r for r in rows if r["form"] == form), key=lambda r: -r["mean"])
        fewest = min(mine, key=lambda r: len(r["below_floor"]))
        for r in [mine[0]] + ([fewest] if fewest is not mine[0] else []):
            w = r["weights"]
            below = ", ".join(f"{g.removeprefix(LEVAL)} {v:+.2f}" for g, v in r["below_floor"].items()) or "none"
            cells = [
                form,
                f"{w['passage']:g}",
                f"{w['document']:g}",
                f"{w['document_lexical']:g}",
                f"{r['mean']:.2f}",
                below,
            ]
            lines.append("| " + " | ".join([*cells, str(not r["below_floor"])]) + " |")
    met = sum(not r["below_floor"] for r in rows)
    lines += ["", f"(form, weights) pairs meeting every floor: {met} of {len(rows)}."]
    (out / "fusion-forms.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
