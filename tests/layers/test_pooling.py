"""The redundancy-gated pooling: the batched running pool against its one-segment-at-a-time twin,
and what the gate must (and must not) do."""

import math

import numpy as np
import pytest
import torch

from lam.documents import pooled_sums
from lam.layers import RunningPool, pool_reference, redundancy_weight, segment_idf_reference, segment_idf_weights
from tests.conftest import make_tiny_lam


def _random_documents(seed: int = 0, dim: int = 16) -> list[tuple[list[torch.Tensor], list[float]]]:
    g = torch.Generator().manual_seed(seed)
    docs = []
    for n_segments in (1, 2, 5, 9):
        base = torch.randn(dim, generator=g)
        sums, counts = [], []
        for s in range(n_segments):
            noise = 0.05 if s % 3 else 1.0  # some segments nearly repeat the text so far, some do not
            sums.append(base * 10 + noise * torch.randn(dim, generator=g) * 10)
            counts.append(float(torch.randint(1, 40, (), generator=g)))
        docs.append((sums, counts))
    return docs


@pytest.mark.parametrize("tau,power", [(0.2, 2.0), (0.05, 1.0), (0.0, 2.0)])
def test_running_pool_equals_the_reference(tau, power):
    docs = _random_documents()
    pool = RunningPool(len(docs), 16, tau, power)
    for step in range(max(len(s) for s, _ in docs)):  # documents drop out as they end, as in pooled_sums
        rows = [i for i, (s, _) in enumerate(docs) if step < len(s)]
        pool.add(rows, torch.stack([docs[i][0][step] for i in rows]), torch.tensor([docs[i][1][step] for i in rows]))
    expected = torch.stack([pool_reference(s, c, tau, power) for s, c in docs])
    torch.testing.assert_close(pool.embeddings(), expected, rtol=1e-5, atol=1e-5)


def test_one_segment_and_tau_zero_are_the_plain_mean():
    sums, counts = _random_documents()[2]
    plain = torch.stack(sums).sum(0) / sum(counts)
    torch.testing.assert_close(pool_reference(sums, counts, 0.0, 2.0), plain)
    torch.testing.assert_close(pool_reference(sums[:1], counts[:1], 0.2, 2.0), sums[0] / counts[0])


def test_a_repeated_segment_is_gated_and_fresh_text_is_not():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    seen = a.unsqueeze(0)
    w = redundancy_weight(torch.stack([a * 3, a + 0.01 * b, b]), seen.expand(3, 3), tau=0.2, power=2.0)
    assert w[0] == 0 and w[1] < 1e-3 and w[2] == 1  # a repeat, a near repeat, something new
    first = redundancy_weight(a.unsqueeze(0), torch.zeros(1, 3), tau=0.2, power=2.0)
    assert first.item() == 1  # nothing seen yet: a first segment always counts


def test_repetition_does_not_drown_a_fact():
    """One fresh segment among many repeats keeps a large share of the embedding."""
    filler, fact = torch.tensor([1.0, 0.1, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    sums = [filler * 100] * 50 + [fact * 100] + [filler * 100] * 50
    counts = [100.0] * len(sums)
    plain = torch.stack(sums).sum(0) / sum(counts)
    gated = pool_reference(sums, counts, 0.2, 2.0)
    assert plain[2] / plain.norm() < 0.02
    assert gated[2] / gated.norm() > 0.5


def test_pooled_sums_gate_each_document_by_its_own_segments():
    """End to end on a model: documents of different lengths in one batch, repeated text in
    some, equal the reference applied to each document's own segment sums (segment IDF off: the
    gate alone; the IDF test below covers both together)."""
    lam = make_tiny_lam(gates=0.5, token_idf=False)
    texts = ["the cat sat on the mat . " * 12, "a dog ran fast", "memory text is long and " * 3 + "the cat ran"]
    steps: dict[int, list[tuple[torch.Tensor, float]]] = {}

    def on_step(rows, sums, counts):
        for k, r in enumerate(rows):
            steps.setdefault(r, []).append((sums[k].clone(), float(counts[k])))

    with torch.inference_mode():
        docs = [lam.segmenter.text_segments(t) for t in texts]
        total, count = pooled_sums(lam.model, lam.segmenter, docs, on_step=on_step)
    cfg = lam.config
    for i in range(len(texts)):
        sums, counts = zip(*steps[i])
        expected = pool_reference(list(sums), list(counts), cfg.redundancy_tau, cfg.redundancy_power)
        torch.testing.assert_close(total[i] / count[i], expected, rtol=1e-5, atol=1e-5)
    assert len(steps[0]) > 3  # the repeated text really spans several segments
    emb = lam.encode(texts)
    np.testing.assert_allclose(emb, torch.nn.functional.normalize(total / count.unsqueeze(-1), dim=-1), atol=1e-5)


def test_the_gate_changes_a_repetitive_text_only():
    """A repeated sentence is down-weighted; with the gate off the same model gives the plain mean."""
    on = make_tiny_lam(gates=0.5, token_idf=False)
    off = make_tiny_lam(gates=0.5, redundancy_tau=0.0, token_idf=False)
    repetitive = "the cat sat on the mat . " * 20 + "a dog ran fast and slow"
    assert not np.allclose(on.encode(repetitive), off.encode(repetitive), atol=1e-3)
    np.testing.assert_allclose(on.encode("a dog ran fast"), off.encode("a dog ran fast"), atol=1e-6)


# --- segment IDF (token_idf) ---


def _random_token_documents(seed: int = 0, dim: int = 8, vocab: int = 12):
    """Per document: unpadded token states and ids of each segment, ids drawn from a small vocabulary
    so that some recur across segments and some do not."""
    g = torch.Generator().manual_seed(seed)
    docs = []
    for n_segments in (1, 3, 6):
        states, ids = [], []
        for _ in range(n_segments):
            n = int(torch.randint(3, 9, (), generator=g))
            states.append(torch.randn(n, dim, generator=g))
            ids.append(torch.randint(0, vocab, (n,), generator=g).tolist())
        docs.append((states, ids))
    return docs


@pytest.mark.parametrize(
    "tau,passage,min_tokens,offset",
    [(0.0, 0, 0, 0.0), (0.3, 0, 0, 0.0), (0.3, 5, 0, 0.0), (0.0, 14, 0, 0.0), (0.3, 0, 12, 0.0), (0.3, 0, 12, 0.3)],
)
def test_segment_idf_pool_equals_the_token_by_token_reference(tau, passage, min_tokens, offset):
    docs = _random_token_documents()
    pool = RunningPool(
        len(docs),
        8,
        tau,
        2.0,
        token_idf=True,
        passage_tokens=passage,
        idf_min_text_tokens=min_tokens,
        idf_df_offset=offset,
    )
    for step in range(max(len(s) for s, _ in docs)):
        rows = [i for i, (s, _) in enumerate(docs) if step < len(s)]
        T = max(docs[i][0][step].shape[0] for i in rows)
        hidden, mask, ids = (
            torch.zeros(len(rows), T, 8),
            torch.zeros(len(rows), T, dtype=torch.bool),
            torch.zeros(len(rows), T, dtype=torch.long),
        )
        for k, i in enumerate(rows):  # padded like a real batch: padding must not count
            n = docs[i][0][step].shape[0]
            hidden[k, :n], mask[k, :n], ids[k, :n] = docs[i][0][step], True, torch.tensor(docs[i][1][step])
            hidden[k, n:] = 100.0
        pool.add(rows, (hidden * mask.unsqueeze(-1)).sum(1), mask.sum(1).float(), (hidden, mask, ids))
    expected = torch.stack([segment_idf_reference(s, i, tau, 2.0, passage, min_tokens, offset) for s, i in docs])
    torch.testing.assert_close(pool.embeddings(), expected, rtol=1e-5, atol=1e-5)
    plain = torch.stack([pool_reference([h.sum(0) for h in s], [len(x) for x in i], tau, 2.0) for s, i in docs])
    kept_mean = []
    for d, (_, ids) in enumerate(docs):  # one passage (u = log 2 for every id) or short: the (gated) mean
        body = sum(len(x) - 2 for x in ids)
        one_passage = len(ids) == 1 if passage == 0 else body <= passage
        kept_mean.append((one_passage and not offset) or body <= min_tokens)
        assert torch.allclose(expected[d], plain[d], atol=1e-6) == kept_mean[-1], d
    if min_tokens:  # the case is built so that the threshold decides for one multi-segment document
        assert any(m and len(docs[d][1]) > 1 for d, m in enumerate(kept_mean)) and not all(kept_mean)
    copy = pool.clone()
    copy.add(
        [2],
        torch.ones(1, 8),
        torch.ones(1),
        (torch.ones(1, 1, 8), torch.ones(1, 1, dtype=torch.bool), torch.zeros(1, 1, dtype=torch.long)),
    )
    torch.testing.assert_close(pool.embeddings(), expected, rtol=1e-5, atol=1e-5)  # a clone is independent


def test_segment_idf_weights_ids_by_how_few_segments_hold_them():
    """An id in every segment gets log(1 + 1/S); an id of one segment log(1 + S)."""
    dim = 2
    common, rare = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    S = 9
    states = [torch.stack([common]) for _ in range(S - 1)] + [torch.stack([common, rare])]
    ids = [[1] for _ in range(S - 1)] + [[1, 2]]
    e = segment_idf_reference(states, ids, 0.0, 1.0)
    u_common, u_rare = math.log((1 + S) / S), math.log(1 + S)
    expected = (S * u_common * common + u_rare * rare) / (S * u_common + u_rare)
    torch.testing.assert_close(e, expected)
    assert e[1] > 0.5 * e[0]  # the plain mean would give the rare id 1/10 of the common one's weight
    with pytest.raises(ValueError, match="token_idf"):
        RunningPool(1, dim, 0.0, 1.0, token_idf=True).add([0], torch.ones(1, dim), torch.ones(1))
    # passages of 2 text tokens: [CLS] 5 6 [SEP] | [CLS] 5 7 8 [SEP] is 5 text tokens in 3 passages,
    # {5 6} {5 7} {8}; [CLS] goes with its segment's first text token, [SEP] with its last
    h = [torch.randn(4, 3), torch.randn(5, 3)]
    e = segment_idf_reference(h, [[101, 5, 6, 102], [101, 5, 7, 8, 102]], 0.0, 1.0, passage_tokens=2)
    a, b = math.log(4 / 2), math.log(4)  # in 2 of the 3 passages (101, 102, 5) or in 1 (6, 7, 8)
    u = [torch.tensor([a, a, b, a]), torch.tensor([a, a, b, b, a])]
    torch.testing.assert_close(e, sum(w @ x for w, x in zip(u, h)) / sum(w.sum() for w in u))


@pytest.mark.parametrize(
    "passage,min_tokens,offset", [(0, 0, 0.0), (3, 0, 0.0), (100, 0, 0.0), (0, 3, 0.0), (0, 0, 0.4)]
)
def test_batched_segment_idf_weights_equal_the_reference_pool(passage, min_tokens, offset):
    """segment_idf_weights (training's differentiable form) gives the reference's pool, padding 0."""
    torch.manual_seed(0)
    ids = [torch.tensor([[5, 6, 7, 5], [3, 3, 4, 8]]), torch.tensor([[5, 9, 0, 0], [4, 8, 8, 2]])]
    masks = [torch.ones(2, 4, dtype=torch.bool), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)]
    states = [torch.randn(2, 4, 8) for _ in ids]
    weights = segment_idf_weights(ids, masks, passage, min_tokens, offset)
    assert float(weights[1][0, 2:].abs().sum()) == 0.0  # padding weighs nothing
    if passage == 0 and not min_tokens and not offset:
        assert weights[0][0, 0] == weights[0][0, 3] == pytest.approx(math.log(3 / 2))  # id 5: both segments
        assert weights[0][0, 1] == pytest.approx(math.log(3))  # id 6: one segment
    if passage == 100:  # one passage: log 2 for every token, the mean pool
        assert torch.allclose(weights[0], torch.full((2, 4), math.log(2)))
    if min_tokens:  # row 0 has 2 + 0 text tokens (≤ 3: u = 1, the mean), row 1 has 2 + 2 (> 3: IDF)
        assert all(torch.equal(w[0], m[0].float()) for w, m in zip(weights, masks))
        assert weights[0][1, 0] == pytest.approx(math.log(3)) and weights[0][1, 2] == pytest.approx(math.log(3 / 2))
    total = sum((w.unsqueeze(-1) * h).sum(1) for w, h in zip(weights, states))
    pooled = total / sum(w.sum(1) for w in weights).unsqueeze(-1)
    for b in range(2):
        seg_states = [h[b][m[b]] for h, m in zip(states, masks)]
        seg_ids = [i[b][m[b]].tolist() for i, m in zip(ids, masks)]
        expected = segment_idf_reference(seg_states, seg_ids, 0.0, 1.0, passage, min_tokens, offset)
        torch.testing.assert_close(pooled[b], expected)


def test_token_idf_encode_equals_the_reference_and_streaming():
    """End to end: encode (batched, memory carried) and the stream equal the token-by-token
    reference on the model's own segment states; short texts keep the mean pool."""
    lam = make_tiny_lam(gates=0.5, token_idf=True)
    plain = make_tiny_lam(gates=0.5, token_idf=False)
    texts = ["the cat sat on the mat . " * 12 + "a dog ran fast", "a dog ran fast", "memory text is long and " * 9]
    cfg = lam.config
    expected = []
    with torch.inference_mode():
        for text in texts:
            state, states, ids_list = None, [], []
            for body in lam.segmenter.text_segments(text):
                ids, mask = lam.segmenter.frame([body])
                hidden, state = lam.model.forward_segment(ids, mask, state, True)
                states.append(hidden[0][mask[0]])
                ids_list.append(ids[0][mask[0]].tolist())
            expected.append(
                torch.nn.functional.normalize(
                    segment_idf_reference(states, ids_list, cfg.redundancy_tau, cfg.redundancy_power), dim=-1
                )
            )
    assert len(ids_list) > 2
    emb = lam.encode(texts)
    np.testing.assert_allclose(emb, torch.stack(expected).numpy(), atol=1e-5)
    np.testing.assert_allclose(lam.stream().feed(texts[0][:50]).feed(texts[0][50:]).embedding(), emb[0], atol=1e-5)
    np.testing.assert_allclose(emb[1], plain.encode(texts[1]), atol=1e-6)  # one segment: unchanged
    assert not np.allclose(emb[0], plain.encode(texts[0]), atol=1e-3)


def test_passage_idf_encode_keeps_the_mean_up_to_one_passage_and_streams():
    """idf_passage_tokens = P: a text of at most P text tokens pools as without IDF (whatever its
    segments); a longer one equals the reference with passages of P tokens, in encode and stream."""
    plain = make_tiny_lam(gates=0.5, token_idf=False)
    short, long = "the cat sat on the mat . " * 2, "the cat sat on the mat . " * 12 + "a dog ran fast"
    bodies = list(plain.segmenter.text_segments(short))
    P = sum(len(b) for b in bodies)
    lam = make_tiny_lam(gates=0.5, token_idf=True, idf_passage_tokens=P)
    assert len(bodies) == 2 and sum(len(b) for b in lam.segmenter.text_segments(long)) > 2 * P
    np.testing.assert_allclose(lam.encode(short), plain.encode(short), atol=1e-6)
    state, states, ids_list = None, [], []
    with torch.inference_mode():
        for body in lam.segmenter.text_segments(long):
            ids, mask = lam.segmenter.frame([body])
            hidden, state = lam.model.forward_segment(ids, mask, state, True)
            states.append(hidden[0][mask[0]])
            ids_list.append(ids[0][mask[0]].tolist())
    cfg = lam.config
    expected = segment_idf_reference(states, ids_list, cfg.redundancy_tau, cfg.redundancy_power, P)
    emb = lam.encode(long)
    np.testing.assert_allclose(emb, torch.nn.functional.normalize(expected, dim=-1).numpy(), atol=1e-5)
    np.testing.assert_allclose(lam.stream().feed(long[:40]).feed(long[40:]).embedding(), emb, atol=1e-5)
    assert not np.allclose(emb, plain.encode(long), atol=1e-3)


def test_min_text_tokens_keeps_the_mean_up_to_m_tokens_then_segment_idf_in_encode_and_stream():
    """idf_min_text_tokens = M (P = 0): a text of at most M text tokens pools as without IDF, though
    it spans segments; a longer one is the segment-IDF reference, in encode and in a stream that
    crosses M on the way."""
    plain = make_tiny_lam(gates=0.5, token_idf=False)
    short, long = "the cat sat on the mat . " * 2, "the cat sat on the mat . " * 12 + "a dog ran fast"
    bodies = list(plain.segmenter.text_segments(short))
    M = sum(len(b) for b in bodies)
    lam = make_tiny_lam(gates=0.5, token_idf=True, idf_min_text_tokens=M)
    segment_idf = make_tiny_lam(gates=0.5, token_idf=True)
    assert len(bodies) == 2
    np.testing.assert_allclose(lam.encode(short), plain.encode(short), atol=1e-6)
    assert not np.allclose(segment_idf.encode(short), plain.encode(short), atol=1e-3)  # M is what keeps it
    np.testing.assert_allclose(lam.encode(long), segment_idf.encode(long), atol=1e-6)
    stream = lam.stream().feed(long[:40])
    stream.feed(long[40:])
    np.testing.assert_allclose(stream.embedding(), lam.encode(long), atol=1e-5)


def test_df_offset_drops_ids_in_nearly_every_segment_and_never_divides_by_zero():
    """c > 0: u = max(0, log((1 + S) / (df + c·S))); an id in every segment gets 0, not ≈ 1/S, and a
    text whose every id drops out keeps the mean pool rather than 0/0."""
    common, rare = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    S, c = 4, 0.5
    states = [torch.stack([common, common]) for _ in range(S - 1)] + [torch.stack([common, rare])]
    ids = [[1, 1] for _ in range(S - 1)] + [[1, 2]]
    u_rare = math.log((1 + S) / (1 + c * S))
    assert math.log((1 + S) / (S + c * S)) < 0  # so the common id is clipped to 0
    torch.testing.assert_close(segment_idf_reference(states, ids, 0.0, 1.0, df_offset=c), rare)
    assert u_rare > 0
    same = [torch.randn(3, 2) for _ in range(S)]  # one id everywhere: every u is 0
    e = segment_idf_reference(same, [[7, 7, 7]] * S, 0.0, 1.0, df_offset=c)
    torch.testing.assert_close(e, torch.cat(same).mean(0))
    pool = RunningPool(1, 2, 0.0, 1.0, token_idf=True, idf_df_offset=c)
    for h in same:
        pool.add(
            [0],
            h.sum(0, keepdim=True),
            torch.tensor([3.0]),
            (h[None], torch.ones(1, 3, dtype=torch.bool), torch.full((1, 3), 7)),
        )
    torch.testing.assert_close(pool.embeddings()[0], e)
    weights = segment_idf_weights([torch.full((1, 3), 7)] * S, [torch.ones(1, 3, dtype=torch.bool)] * S, 0, 0, c)
    assert all(torch.equal(w, torch.ones(1, 3)) for w in weights)
