"""Measure encoders the way MTEB and LongEmbed do: ``lam eval`` and :func:`run_evaluation`.

Suites (``SUITES``): ``sts`` (Spearman ×100), ``longembed`` (regenerated passkey and needle,
nDCG@1 per length), ``qmsum`` (long-document retrieval, nDCG@10). Encoders (``ENCODERS``):
LAM (as shipped and with memory off), the teacher truncated at 256 tokens, the teacher
averaged over 256-token chunks, and BM25 for the retrieval suites.
"""

from lam.evaluation.runner import ENCODERS, SUITES, run_evaluation

__all__ = ["ENCODERS", "SUITES", "run_evaluation"]
