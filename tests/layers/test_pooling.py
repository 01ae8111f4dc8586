"""The pooling: the running pool against its token-by-token twin, and what the redundancy gate
and segment IDF must (and must not) do."""

import math

import numpy as np
import pytest
import torch

from lam.config import POOLINGS
from lam.layers import RunningPool, masked_sum, pool_reference, redundancy_weight
from lam.layers.pooling import IDF_MIN_TEXT_TOKENS
from lam.runner import pooled_sums, to_embeddings
from tests.conftest import make_tiny_lam


def _random_documents(seed: int = 0, dim: int = 8, vocab: int = 12, lengths=(1, 3, 6, 120)):
    """Per document: unpadded token states and ids of each segment ([CLS] … [SEP] framing ids 0/1),
    ids from a small vocabulary so that some recur across segments and some do not; some segments
    nearly repeat the one before (the gate's case)."""
    g = torch.Generator().manual_seed(seed)
    docs = []
    for n_segments in lengths:
        states, ids = [], []
        for s in range(n_segments):
            n = int(torch.randint(3, 12, (), generator=g))
            h = torch.randn(n, dim, generator=g)
            if s and s % 3 == 0:
                h = states[-1][:1].expand(n, dim) + 0.01 * h
            states.append(h)
            ids.append([0, *torch.randint(2, vocab, (n - 2,), generator=g).tolist(), 1])
        docs.append((states, ids))
    return docs


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("flag_whole", [False, True])
def test_running_pool_equals_the_token_by_token_reference(pooling, flag_whole):
    """With ``flag_whole`` the one-segment documents are flagged as whole (pooled as their mean,
    as pooled_sums does); the vectors do not change."""
    docs = _random_documents(lengths=(1, 3, 1, 6, 120))
    assert sum(len(i) - 2 for i in docs[-1][1]) > IDF_MIN_TEXT_TOKENS  # the IDF really applies to one
    pool = RunningPool(len(docs), 8, pooling)
    for step in range(max(len(s) for s, _ in docs)):  # documents drop out as they end, as in pooled_sums
        rows = [i for i, (s, _) in enumerate(docs) if step < len(s)]
        width = max(len(docs[i][1][step]) for i in rows)
        hidden = torch.zeros(len(rows), width, 8)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        for k, i in enumerate(rows):
            n = len(docs[i][1][step])
            hidden[k, :n], mask[k, :n], ids[k, :n] = docs[i][0][step], True, torch.tensor(docs[i][1][step])
        whole = [step == 0 and len(docs[i][0]) == 1 for i in rows] if flag_whole else None
        pool.add(rows, *masked_sum(hidden, mask), (hidden, mask, ids), whole)
    expected = torch.stack([pool_reference(s, i, pooling) for s, i in docs])
    torch.testing.assert_close(to_embeddings(*pool.sums(), normalize=False), expected, rtol=1e-5, atol=1e-5)


def test_the_pools_agree_on_one_segment_and_differ_on_long_repetitive_text():
    docs = _random_documents(lengths=(1, 120))
    one, long = docs
    torch.testing.assert_close(pool_reference(*one, "segment-idf"), pool_reference(*one, "mean"))
    assert not torch.allclose(pool_reference(*long, "segment-idf"), pool_reference(*long, "mean"), atol=1e-3)


def test_a_repeated_segment_is_gated_and_fresh_text_is_not():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    seen = a.unsqueeze(0)
    w = redundancy_weight(torch.stack([a * 3, a + 0.01 * b, b]), seen.expand(3, 3))
    assert w[0] == 0 and w[1] < 1e-3 and w[2] == 1  # a repeat, a near repeat, something new
    assert redundancy_weight(a.unsqueeze(0), torch.zeros(1, 3)).item() == 1  # a first segment always counts


def test_repetition_does_not_drown_a_fact():
    """One fresh segment among many repeats keeps a large share of the embedding."""
    filler, fact = torch.tensor([1.0, 0.1, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    states = [filler.expand(4, 3)] * 50 + [fact.expand(4, 3)] + [filler.expand(4, 3)] * 50
    ids = [[0, 5, 6, 1]] * 50 + [[0, 7, 8, 1]] + [[0, 5, 6, 1]] * 50
    plain, pooled = pool_reference(states, ids, "mean"), pool_reference(states, ids, "segment-idf")
    assert plain[2] / plain.norm() < 0.02
    assert pooled[2] / pooled.norm() > 0.5


def test_gated_segment_mean_drops_repeated_segments_and_streams_as_the_reference():
    """Filler, filler…, a fact, filler…: the repeats after the first vanish, so the fact holds
    half the embedding (under segment-mean, 1/101 of it); the running pool agrees with the reference."""
    filler, fact = torch.tensor([1.0, 0.1, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    states = [filler.expand(4, 3)] * 50 + [fact.expand(4, 3)] + [filler.expand(4, 3)] * 50
    ids = [[0, 5, 6, 1]] * 50 + [[0, 7, 8, 1]] + [[0, 5, 6, 1]] * 50
    plain, gated = pool_reference(states, ids, "segment-mean"), pool_reference(states, ids, "gated-segment-mean")
    assert plain[2] / plain.norm() < 0.02
    torch.testing.assert_close(gated, (filler / filler.norm() + fact) / 2)
    pool = RunningPool(1, 3, "gated-segment-mean")
    for h in states:
        pool.add([0], h.sum(0, keepdim=True), torch.tensor([4.0]))
    torch.testing.assert_close(to_embeddings(*pool.sums(), normalize=False)[0], gated)


def test_segment_idf_by_hand():
    """u = max(0, log((1 + S) / (df + 0.2·S))) on a text of more than 510 text tokens: an id in every
    segment drops out; an id of one segment weighs log((1 + S) / (1 + 0.2·S))."""
    S, n = 6, 100  # six segments of 98 text tokens
    basis = torch.eye(S + 1)  # orthogonal segments: the gate stays open
    common, rare = basis[0], basis[S]
    states = [basis[s].expand(n, S + 1) for s in range(S - 1)]
    states.append(torch.stack([basis[S - 1]] * (n - 2) + [rare, basis[S - 1]]))
    ids = [[0] + [5] * (n - 2) + [1] for _ in range(S - 1)] + [[0] + [5] * (n - 3) + [9, 1]]
    e = pool_reference(states, ids, "segment-idf")
    assert math.log((1 + S) / (S + 0.2 * S)) < 0  # ids 0, 1 and 5 are in every segment: u = 0
    torch.testing.assert_close(e, rare)  # only the rare id is left
    same = [[0] + [5] * (n - 2) + [1]] * S  # every id drops out: the mean, not 0/0
    torch.testing.assert_close(pool_reference([common.expand(n, S + 1)] * S, same, "segment-idf"), common)
    pool = RunningPool(1, S + 1)
    for h, i in zip(states, ids):
        mask = torch.ones(1, len(i), dtype=torch.bool)
        pool.add([0], *masked_sum(h.unsqueeze(0), mask), (h.unsqueeze(0), mask, torch.tensor([i])))
    torch.testing.assert_close(to_embeddings(*pool.sums(), normalize=False)[0], rare)


def test_segment_idf_pool_needs_the_tokens():
    with pytest.raises(ValueError, match="needs each segment"):
        RunningPool(1, 2).add([0], torch.ones(1, 2), torch.ones(1))
    with pytest.raises(ValueError, match="pooling must be one of"):
        RunningPool(1, 2, "max")


@pytest.mark.parametrize("pooling", POOLINGS)
def test_encode_and_stream_equal_the_reference_on_the_models_own_states(pooling):
    """End to end on a model: texts of one segment, of a few, and of more than 510 tokens (with a
    repeated sentence) in one batch equal the reference on each text's own segment states, in
    ``encode`` (batched, memory carried) and in a stream fed in pieces."""
    lam = make_tiny_lam(gates=0.5, pooling=pooling)
    long = "the cat sat on the mat . " * 80 + "a dog ran fast and slow memory"
    texts = [long, "a dog ran fast", "memory text is long and " * 9]
    expected = []
    with torch.inference_mode():
        for text in texts:
            state, states, ids_list = None, [], []
            for body in lam.segmenter.text_segments(text):
                ids, mask = lam.segmenter.frame([body])
                hidden, state = lam.model.forward_segment(ids, mask, state, True)
                states.append(hidden[0][mask[0]])
                ids_list.append(ids[0][mask[0]].tolist())
            expected.append(torch.nn.functional.normalize(pool_reference(states, ids_list, pooling), dim=-1))
        assert sum(len(i) - 2 for i in ids_list) < IDF_MIN_TEXT_TOKENS < lam.count_tokens(long)
    emb = lam.encode(texts)
    np.testing.assert_allclose(emb, torch.stack(expected).numpy(), atol=1e-5)
    stream = lam.stream().feed(long[:50]).feed(long[50:])
    np.testing.assert_allclose(stream.embedding(), emb[0], atol=1e-5)


def test_pooled_sums_steps_are_the_segments_sums():
    """``on_step`` hands out each segment's Σ hidden and token count (the index's passage vectors)."""
    lam = make_tiny_lam(gates=0.5)
    texts = ["the cat sat on the mat . " * 6, "a dog ran fast"]
    steps: dict[int, list[float]] = {}

    def on_step(rows, sums, counts):
        for k, r in enumerate(rows):
            steps.setdefault(r, []).append(float(counts[k]))

    with torch.inference_mode():
        pooled_sums(lam.model, lam.segmenter, [lam.segmenter.text_segments(t) for t in texts], on_step=on_step)
    assert steps[1] == [lam.count_tokens(texts[1]) + 2]
    assert sum(steps[0]) == lam.count_tokens(texts[0]) + 2 * len(steps[0]) and len(steps[0]) > 3


def test_segment_mean_with_the_memory_off_is_the_teachers_chunk_average():
    """A memory-off model pooled by ``"segment-mean"`` averages the unit vectors of its segments,
    each the windowed model's mean over one [CLS] chunk [SEP]: what chunk-averaging computes."""
    lam = make_tiny_lam(gates=0.5, pooling="segment-mean", memory=False)
    text = "the cat sat on the mat . " * 20 + "a dog ran"
    chunks = []
    with torch.inference_mode():
        for body in lam.segmenter.text_segments(text):
            ids, mask = lam.segmenter.frame([body])
            hidden, _ = lam.model.forward_segment(ids, mask, None, False)
            chunks.append(torch.nn.functional.normalize(hidden[0].mean(0), dim=-1))
    assert len(chunks) > 2
    want = torch.nn.functional.normalize(torch.stack(chunks).mean(0), dim=-1).numpy()
    np.testing.assert_allclose(lam.encode([text])[0], want, atol=1e-5)
