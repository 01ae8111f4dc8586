"""Evaluation sets read from ../shared/data: STS pairs and long-document retrieval (QMSum meetings,
L-Eval's documents of eleven kinds)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field

import numpy as np

from lam.data_paths import require


@dataclass
class STSSet:
    """Sentence pairs with gold similarity scores."""

    name: str
    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray


@dataclass
class RetrievalSplit:
    """A corpus, queries and their relevant documents; scored by ``main_metric``."""

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, set[str]]
    main_metric: str = "ndcg_at_10"
    info: dict = field(default_factory=dict)


def _read_pairs(paths: list[str], name: str) -> STSSet:
    s1, s2, scores = [], [], []
    for rel in paths:
        with open(require(rel), newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                s1.append(row["sentence1"])
                s2.append(row["sentence2"])
                scores.append(float(row["score"]))
    return STSSet(name, s1, s2, np.array(scores))


STS_SETS = {
    "stsb-test": ["stsb/test.csv"],
    "stsb-dev": ["stsb/dev.csv"],
    "sickr-test": ["sick/test.csv"],
    "sts12": [f"sts12-16/sts12/{s}.csv" for s in ("MSRpar", "MSRvid", "OnWN", "SMTeuroparl", "SMTnews")],
    "sts13": [f"sts12-16/sts13/{s}.csv" for s in ("FNWN", "OnWN", "headlines")],
    "sts14": [
        f"sts12-16/sts14/{s}.csv" for s in ("OnWN", "deft-forum", "deft-news", "headlines", "images", "tweet-news")
    ],
    "sts15": [
        f"sts12-16/sts15/{s}.csv" for s in ("answers-forums", "answers-students", "belief", "headlines", "images")
    ],
}


def load_sts(name: str) -> STSSet:
    """One STS set; STS12–15 pool their subsets into one set, as MTEB does."""
    return _read_pairs(STS_SETS[name], name)


def load_qmsum(variant: str = "query") -> RetrievalSplit:
    """QMSum val: corpus = the 35 meeting transcripts; queries = the 272 query texts
    (``variant="query"``) or their answer summaries (``"answer"``, LongEmbed's form)."""
    if variant not in ("query", "answer"):
        raise ValueError(f"variant must be 'query' or 'answer', got {variant!r}")
    corpus, queries, qrels = {}, {}, {}
    with open(require("qmsum/val.jsonl"), encoding="utf-8") as f:
        for line in f:
            meeting = json.loads(line)
            corpus[meeting["id"]] = meeting["transcript"]
            for k, info in enumerate(meeting["query_info"]):
                qid = f"{meeting['id']}-q{k}"
                queries[qid] = info["query"] if variant == "query" else info["answer"]
                qrels[qid] = {meeting["id"]}
    return RetrievalSplit(f"qmsum-{variant}", corpus, queries, qrels, "ndcg_at_10")


LEVAL_TASKS = (  # the L-Eval tasks in ../shared/data/leval: one kind of long document each
    "financial_qa",  # earnings calls
    "gov_report_summ",  # government reports
    "legal_contract_qa",  # contracts
    "multidoc_qa",  # help-centre pages
    "natural_question",  # Wikipedia pages
    "news_summ",  # news articles
    "paper_assistant",  # research papers
    "patent_summ",  # patents
    "review_summ",  # hotel reviews
    "scientific_qa",  # research papers, questions
    "tv_show_summ",  # TV transcripts
)


def load_leval(variant: str = "question") -> list[RetrievalSplit]:
    """L-Eval's long documents pooled into one corpus (its 199 records, identical texts merged:
    176 documents),
    and one split per task (kind of document) whose queries are that task's instructions
    (``variant="question"``) or reference outputs, answers or summaries (``"reference"``), each
    relevant to the document it was written for.

    A query text given for more than one distinct document (a generic "Please summarize these
    news articles.", a one-word answer) identifies none and is left out, so the summary tasks
    have references but no questions. Splits left without queries are not returned. Every split
    holds the same corpus object, so a retriever embeds or indexes it once.
    """
    if variant not in ("question", "reference"):
        raise ValueError(f"variant must be 'question' or 'reference', got {variant!r}")
    field_name = "instructions" if variant == "question" else "outputs"
    corpus: dict[str, str] = {}  # doc id -> text, one id per distinct text
    doc_of_text: dict[str, str] = {}
    records: list[tuple[str, str, list[str]]] = []  # (task, doc id, query texts)
    for task in LEVAL_TASKS:
        with open(require(f"leval/{task}.jsonl"), encoding="utf-8") as f:
            for i, line in enumerate(f):
                record = json.loads(line)
                doc_id = doc_of_text.setdefault(record["input"], f"{task}/{i}")
                corpus.setdefault(doc_id, record["input"])
                records.append((task, doc_id, [q.strip() for q in record[field_name]]))
    docs_of_query: dict[str, set[str]] = {}
    for _, doc_id, texts in records:
        for text in texts:
            docs_of_query.setdefault(text, set()).add(doc_id)
    splits = []
    for task in LEVAL_TASKS:
        queries, qrels = {}, {}
        for _, doc_id, texts in (r for r in records if r[0] == task):
            for text in texts:
                if text and docs_of_query[text] == {doc_id}:
                    qid = f"{doc_id}-{len(queries)}"
                    queries[qid], qrels[qid] = text, {doc_id}
        if queries:
            splits.append(RetrievalSplit(f"leval-{task}-{variant}", corpus, queries, qrels, info={"genre": task}))
    return splits


FIDELITY_SEED = 512


def load_fidelity_texts(n_texts: int = 128, n_tokens: int = 510, seed: int = FIDELITY_SEED) -> list[str]:
    """``n_texts`` passages of ``n_tokens`` WordPiece tokens (whole words) from the long documents
    the distillation holds out (``lam.distill.data.long_documents("heldout")``).

    With [CLS] and [SEP] a passage is exactly the teacher's 512 positions, so the teacher sees
    all of it with full attention while LAM sees two segments and its memory: the 512-token
    fidelity is the mean cosine between the two embeddings.
    """
    import random

    from tokenizers import Tokenizer

    from lam.distill.data import long_documents
    from lam.persistence import DEFAULT_MODEL_DIR

    tokenizer = Tokenizer.from_file(str(DEFAULT_MODEL_DIR / "tokenizer.json"))  # the teacher's WordPiece
    tokenizer.no_truncation()
    tokenizer.no_padding()
    rng = random.Random(seed)
    texts: list[str] = []
    per_doc = 8
    for _, text in long_documents("heldout"):
        start = rng.randrange(0, max(1, len(text) - 40_000))
        piece = text[start : start + 40_000]
        enc = tokenizer.encode(piece, add_special_tokens=False)
        words = [i for i, tok in enumerate(enc.tokens) if not tok.startswith("##")]
        starts = [i for i in words[1:] if i + n_tokens < len(enc.tokens)]
        for s in sorted(rng.sample(starts, min(per_doc, len(starts)))):
            end = s + n_tokens  # cut before a word start so no word is split
            while end > s and enc.tokens[end].startswith("##"):
                end -= 1
            texts.append(piece[enc.offsets[s][0] : enc.offsets[end - 1][1]])
            if len(texts) == n_texts:
                return texts
    return texts
