"""Exact long-document retrieval: passages from the streaming encoder, SQLite + FTS5, fusion."""

from lam.retrieval.fusion import DEFAULT_WEIGHTS, FusionWeights
from lam.retrieval.index import Hit, Index
from lam.retrieval.passages import Passage

__all__ = ["DEFAULT_WEIGHTS", "FusionWeights", "Hit", "Index", "Passage"]
