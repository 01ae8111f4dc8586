"""How three signals become one ranking: weighted z-score fusion.

For a query, each document d gets three scores:

* ``passage``  — for each query sentence, its best cosine over d's passages, averaged over the
  sentences (a one-sentence query: max over passages; where in d the answer is)
* ``document`` — cos(q, d's document vector)                       (what d is about as a whole)
* ``lexical``  — max over d's passages of FTS5 BM25 over the query's content words and
  adjacent word pairs (:mod:`lam.retrieval.lexical`; 0 when no query term occurs in d)

Each is standardised over the candidate documents, z = (s − mean) / std, and the fused score is

    score(d) = w_passage · z_passage(d) + w_document · z_document(d) + w_lexical · z_lexical(d)

Standardising keeps what reciprocal-rank fusion throws away: how far the best document stands
out. A passage that alone holds a rare query term gets a BM25 score many deviations above the
rest, and a weak dense signal cannot outvote that; when nothing stands out lexically, the dense
scores decide. The weights were chosen on dev data only (QMSum val, synthetic passkey/needle
with seeds other than the evaluation seed): ``python -m lam.retrieval.tuning`` reproduces the
choice and writes ``results/retrieval/fusion-dev.{json,md}``. On that grid the best mean came from
(passage 0.75, document 0, lexical 1): on dev, the document vector added nothing once the best
passage was in, so it is computed and reported with every hit but does not move the ranking
(pass ``FusionWeights(document=...)`` to give it a say).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FusionWeights:
    """Weights of the standardised signals (see the module docstring)."""

    passage: float = 0.75
    document: float = 0.0
    lexical: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


DEFAULT_WEIGHTS = FusionWeights()


def standardise(scores: np.ndarray) -> np.ndarray:
    """(s − mean) / std over the last axis; a constant row becomes 0."""
    mean = scores.mean(-1, keepdims=True)
    std = scores.std(-1, keepdims=True)
    return np.where(std > 1e-12, (scores - mean) / np.maximum(std, 1e-12), 0.0)


def fuse(passage: np.ndarray, document: np.ndarray, lexical: np.ndarray, weights: FusionWeights) -> np.ndarray:
    """Fused scores of the candidates (arrays ``[..., n_candidates]``)."""
    return (
        weights.passage * standardise(passage)
        + weights.document * standardise(document)
        + weights.lexical * standardise(lexical)
    )
