"""Scores exactly as MTEB computes them."""

from __future__ import annotations

import numpy as np


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties), as scipy.stats.spearmanr."""
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def rank_documents(scores: np.ndarray, doc_ids: list[str]) -> np.ndarray:
    """Document order per query: score descending, ties broken by doc id descending.

    That is pytrec_eval's (and so MTEB's) rule; it decides what a model that gives many
    documents the same score gets (e.g. 0.02 for a truncating model at 32K tokens).
    """
    # lexsort sorts by the last key first; both keys ascending, so negate the score and
    # reverse the id order by ranking ids descending.
    id_rank = np.argsort(np.argsort(np.array(doc_ids, dtype=object), kind="stable"), kind="stable")
    return np.stack([np.lexsort((-id_rank, -row)) for row in scores])


def ndcg_per_query(scores: np.ndarray, doc_ids: list[str], relevant: list[set[str]], k: int) -> list[float]:
    """nDCG@k of each query (binary relevance): scores ``[Q, D]``, relevant[q] = gold ids."""
    order = rank_documents(scores, doc_ids)
    out = []
    for q, rel in enumerate(relevant):
        top = [doc_ids[j] for j in order[q, :k]]
        dcg = sum(1.0 / np.log2(i + 2) for i, d in enumerate(top) if d in rel)
        idcg = sum(1.0 / np.log2(i + 2) for i in range(min(len(rel), k)))
        out.append(dcg / idcg if idcg else 0.0)
    return out


def ndcg_at_k(scores: np.ndarray, doc_ids: list[str], relevant: list[set[str]], k: int) -> float:
    """Mean nDCG@k over queries (binary relevance): scores ``[Q, D]``, relevant[q] = gold ids."""
    return sum(ndcg_per_query(scores, doc_ids, relevant, k)) / len(relevant)
