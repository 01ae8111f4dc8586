"""LongEmbed's synthetic tasks, regenerated offline with fixed seeds.

Protocol (LongEmbed, arXiv 2404.12096 §3.2–3.3, as summarised in shared/notes/longembed-mteb.md):
8 context lengths L = 256 … 32768; per length 100 documents sharing one haystack and 50
queries drawn from them, each with exactly one relevant document; nDCG@1 per length.

* passkey — filler "The grass is green. The sky is blue. …" repeated, with
  "{Name}'s pass key is {K}. Remember it. {K} is the pass key for {Name}." inserted at a random
  sentence boundary; the query is "what is the passkey for {name}?".
* needle — a prefix of the Paul Graham essays (sorted by file name) with fact i of
  ``data/needles.jsonl`` inserted at a random sentence boundary; the query is its question.

Document sizes are calibrated to the official LongEmbed character counts per length.
``EVAL_SEED`` generates the evaluation sets; tune only on sets made with other seeds.
"""

from __future__ import annotations

import json
import random
import re
from functools import cache
from pathlib import Path

from lam.data_paths import require
from lam.evaluation.datasets import RetrievalSplit

PACKAGE_DATA = Path(__file__).resolve().parent / "data"  # the needles, shipped with the package

LENGTHS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
EVAL_SEED = 20240417
N_DOCS, N_QUERIES = 100, 50
# Mean document characters of the official mteb sets (descriptive stats), per length.
PASSKEY_CHARS = {256: 875, 512: 1785, 1024: 3607, 2048: 7242, 4096: 14518, 8192: 29071, 16384: 58174, 32768: 116380}
NEEDLE_CHARS = {256: 1013, 512: 2010, 1024: 4070, 2048: 8454, 4096: 17395, 8192: 35203, 16384: 72055, 32768: 141770}
# Beyond LongEmbed: passkey documents of 128K and 1M tokens, sized at the 32K set's characters
# per token (the filler is uniform, so the rate holds). Needle has no haystack this long.
EXTRA_PASSKEY_LENGTHS = (131072, 1048576)
PASSKEY_CHARS.update({n: round(PASSKEY_CHARS[32768] * n / 32768) for n in EXTRA_PASSKEY_LENGTHS})
FILLER = ("The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.", "There and back again.")
FIRST_NAMES = (
    "Malayah Kyree Douglas Declan Cheyenne Sky Ingrid Tobias Aurelia Marcus Priya Dmitri Leona Hector Yuki Fatima "
    "Oskar Beatrix Emeka Soren Camila Rafferty Nadia Lucian Imani Bastian Ottilie Zane Mireille Caspian Adaeze Florian "
    "Esme Thaddeus Lorelei Jovan Anouk Barnaby Selin Idris Wren Casimir Noor Evander Paloma Ruairi Svetlana Amadou "
    "Clementine Horatio"
).split()
LAST_NAMES = (
    "Graves Mays Alfaro Horton Jarvis Morrow Lindqvist Achebe Castellanos Whitlock Nakamura Okonjo Petrovic "
    "Valdivia Brennan Haddad Kowalczyk Ferreira Abernathy Oyelaran Moreau Sandoval Thorne Kapoor Eriksen Mbatha "
    "Quintero Delacroix Hargreaves Yilmaz Bjornsson Adeyemi Calloway Novak Santangelo Featherby Ivanova Mwangi "
    "Lachance Dunmore Szabo Okafor Rautenberg Ellingworth Vasquez Tamura Oduya Fairweather Grimaldi Holmgren"
).split()


def _rng(task: str, length: int, seed: int) -> random.Random:
    return random.Random(f"{task}/{length}/{seed}")


def _split(task: str, length: int, docs: list[str], questions: list[str], rng: random.Random) -> RetrievalSplit:
    corpus = {f"doc{i}": text for i, text in enumerate(docs)}
    chosen = rng.sample(range(len(docs)), min(N_QUERIES, len(docs)))
    queries = {f"q{i}": questions[i] for i in chosen}
    qrels = {f"q{i}": {f"doc{i}"} for i in chosen}
    return RetrievalSplit(f"{task}/{length}", corpus, queries, qrels, "ndcg_at_1", {"length": length})


def passkey_split(length: int, seed: int = EVAL_SEED, n_docs: int = N_DOCS) -> RetrievalSplit:
    rng = _rng("passkey", length, seed)
    names = rng.sample([f"{f} {last}" for f in FIRST_NAMES for last in LAST_NAMES], n_docs)
    docs, questions = [], []
    for name in names:
        key = rng.randint(1, 50000)
        needle = f"{name}'s pass key is {key}. Remember it. {key} is the pass key for {name}."
        budget = PASSKEY_CHARS[length] - len(needle) - 1
        fillers, size = [], -1
        while size + 1 + len(FILLER[len(fillers) % 5]) <= budget:
            size += 1 + len(FILLER[len(fillers) % 5])
            fillers.append(FILLER[len(fillers) % 5])
        fillers.insert(rng.randint(0, len(fillers)), needle)
        docs.append(" ".join(fillers))
        questions.append(f"what is the passkey for {name.lower()}?")
    return _split("passkey", length, docs, questions, rng)


@cache
def needle_facts() -> list[dict[str, str]]:
    """The 100 (fact, question) pairs written for this project."""
    with open(PACKAGE_DATA / "needles.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@cache
def _haystack_sentences() -> tuple[str, ...]:
    """The Paul Graham essays as one sentence sequence (whitespace collapsed)."""
    essays = sorted(require("pg_essays").glob("*.txt"))
    text = " ".join(re.sub(r"\s+", " ", p.read_text(encoding="utf-8")).strip() for p in essays)
    return tuple(s for s in re.split(r"(?<=[.!?])\s+", text) if s)


def needle_split(length: int, seed: int = EVAL_SEED, n_docs: int = N_DOCS) -> RetrievalSplit:
    if length not in NEEDLE_CHARS:
        raise ValueError(f"needle sets exist for lengths {tuple(NEEDLE_CHARS)}, not {length}")
    rng = _rng("needle", length, seed)
    facts = needle_facts()[:n_docs]
    mean_fact = sum(len(f["fact"]) for f in facts) / len(facts)
    budget = NEEDLE_CHARS[length] - mean_fact - 1
    sentences, size = [], -1
    for s in _haystack_sentences():  # one haystack shared by every document at this length
        if size + 1 + len(s) > budget:
            break
        sentences.append(s)
        size += 1 + len(s)
    docs = []
    for fact in facts:
        doc = list(sentences)
        doc.insert(rng.randint(0, len(doc)), fact["fact"])
        docs.append(" ".join(doc))
    return _split("needle", length, docs, [f["question"] for f in facts], rng)


def synthetic_splits(task: str, lengths=LENGTHS, seed: int = EVAL_SEED, n_docs: int = N_DOCS) -> list[RetrievalSplit]:
    """The task's sets at every length it has (needle stops at 32768; passkey goes to 1M)."""
    make, sizes = {"passkey": (passkey_split, PASSKEY_CHARS), "needle": (needle_split, NEEDLE_CHARS)}[task]
    return [make(length, seed, n_docs) for length in lengths if length in sizes]
