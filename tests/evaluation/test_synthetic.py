"""The regenerated LongEmbed sets follow the protocol and are reproducible."""

import re

import numpy as np
import pytest

from lam.evaluation.synthetic import (
    NEEDLE_CHARS,
    PASSKEY_CHARS,
    _haystack_sentences,
    needle_facts,
    needle_split,
    passkey_split,
)
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "pg_essays").exists(), reason="needs ../shared/data")

STOP = set(
    "what who where when why how which does did was were is are the a an of in on to for from by with "
    "and his her their its into at as be many much long old far did use used".split()
)


@pytest.mark.parametrize("make", [passkey_split, needle_split])
def test_protocol_shape_and_determinism(make):
    split = make(1024)
    assert len(split.corpus) == 100 and len(split.queries) == 50
    assert all(len(rel) == 1 for rel in split.qrels.values())
    assert len({next(iter(r)) for r in split.qrels.values()}) == 50  # 50 distinct targets
    again = make(1024)
    assert again.corpus == split.corpus and again.queries == split.queries
    other = make(1024, seed=7)
    assert other.corpus != split.corpus


def test_passkey_documents():
    split = passkey_split(512)
    for qid, query in split.queries.items():
        name = re.match(r"what is the passkey for (.+)\?", query).group(1)
        doc = split.corpus[next(iter(split.qrels[qid]))]
        assert f"{name}'s pass key is" in doc.lower()
        assert doc.startswith("The grass is green.") or "pass key" in doc[:120]


@pytest.mark.parametrize("length", [256, 4096, 32768])
def test_sizes_match_official_character_counts(length):
    p = np.mean([len(t) for t in passkey_split(length).corpus.values()])
    n = np.mean([len(t) for t in needle_split(length).corpus.values()])
    assert abs(p - PASSKEY_CHARS[length]) / PASSKEY_CHARS[length] < 0.02
    assert abs(n - NEEDLE_CHARS[length]) / NEEDLE_CHARS[length] < 0.15


def test_needle_documents_share_one_haystack():
    split = needle_split(2048)
    facts = [f["fact"] for f in needle_facts()]
    stripped = {doc.replace(fact, "").replace("  ", " ").strip() for doc, fact in zip(split.corpus.values(), facts)}
    assert len(stripped) == 1


def test_needle_key_terms_are_only_in_their_fact():
    facts = needle_facts()
    assert len(facts) == 100
    haystack = " ".join(_haystack_sentences()).lower()
    words = [set(re.findall(r"[a-zà-ÿ-]+", f["fact"].lower())) for f in facts]
    for i, f in enumerate(facts):
        q_words = set(re.findall(r"[a-zà-ÿ-]+", f["question"].lower())) - STOP
        keys = [
            w
            for w in q_words & words[i]
            if len(w) > 3
            and not any(w in words[j] for j in range(100) if j != i)
            and not re.search(rf"\b{re.escape(w)}\b", haystack)
        ]
        assert keys, f"fact {i} has no key term unique to it: {f['question']}"
