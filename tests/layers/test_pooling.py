"""The redundancy-gated pooling: the batched running pool against its one-segment-at-a-time twin,
and what the gate must (and must not) do."""

import numpy as np
import pytest
import torch

from lam.documents import pooled_sums
from lam.layers import RunningPool, pool_reference, redundancy_weight
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
    some, equal the reference applied to each document's own segment sums."""
    lam = make_tiny_lam(gates=0.5)
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
    on = make_tiny_lam(gates=0.5)
    off = make_tiny_lam(gates=0.5, redundancy_tau=0.0)
    repetitive = "the cat sat on the mat . " * 20 + "a dog ran fast and slow"
    assert not np.allclose(on.encode(repetitive), off.encode(repetitive), atol=1e-3)
    np.testing.assert_allclose(on.encode("a dog ran fast"), off.encode("a dog ran fast"), atol=1e-6)
