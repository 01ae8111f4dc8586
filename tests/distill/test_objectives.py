"""Distillation objectives on a tiny random model: well-defined, memory-only, and learnable."""

import torch

from lam import LAMConfig
from lam.distill.objectives import (
    attention_transfer_loss,
    embedding_distillation_loss,
    pooled_segments,
    teacher_layer_inputs,
)
from lam.model import LAMModel
from tests.conftest import tiny_config


def make_pair():
    torch.manual_seed(0)
    student = LAMModel(tiny_config(segment_len=12))
    teacher = LAMModel(LAMConfig.from_dict({**student.config.to_dict(), "segment_len": 24, "memory": False}))
    teacher.load_state_dict({k: v for k, v in student.state_dict().items() if ".memory." not in k})
    ids = torch.randint(4, student.config.vocab_size, (3, 24))
    return student, teacher, ids, torch.ones_like(ids, dtype=torch.bool)


def test_transfer_loss_trains_only_the_memory_and_decreases():
    student, teacher, ids, mask = make_pair()
    inputs = teacher_layer_inputs(teacher, ids, mask)[:-1]
    loss, per_layer = attention_transfer_loss(student, inputs, mask, split=12)
    assert len(per_layer) == 2 and all(abs(v - 1.0) < 1e-5 for v in per_layer)  # closed gates read 0
    loss.backward()
    grads = {n for n, p in student.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads and all(".memory." in n for n in grads)
    params = [p for n, p in student.named_parameters() if ".memory." in n]
    opt = torch.optim.Adam(params, lr=3e-2)
    for _ in range(60):
        opt.zero_grad()
        loss, _ = attention_transfer_loss(student, inputs, mask, split=12)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.9 * 2  # the memory explains part of what full attention adds


def test_pooled_segments_and_embedding_loss():
    student, teacher, ids, mask = make_pair()
    segs = [(ids[:, :12], mask[:, :12]), (ids[:, 12:], mask[:, 12:])]
    emb = pooled_segments(student, segs)
    assert emb.shape == (3, student.config.hidden_size)
    target = teacher_layer_inputs(teacher, ids, mask)[-1].mean(1)
    loss = embedding_distillation_loss(emb, target)
    assert 0 <= float(loss.detach()) < 1
    assert float(embedding_distillation_loss(target, target)) < 1e-6


def test_passage_recall_loss_prefers_matching_pairs():
    from lam.distill.objectives import passage_recall_loss

    torch.manual_seed(0)
    passages = torch.randn(6, 16)
    aligned = passage_recall_loss(passages + 0.01 * torch.randn(6, 16), passages)
    shuffled = passage_recall_loss(passages[torch.randperm(6)], passages)
    assert float(aligned) < 0.01 < float(shuffled)


def test_segment_means_average_to_the_pooled_embedding_for_equal_segments():
    from lam.distill.objectives import segment_means

    student, _, ids, mask = make_pair()
    with torch.no_grad():
        for layer in student.layers:
            layer.attention.memory.read_gate.fill_(0.5)  # the memory is read, and carried
    segs = [(ids[:, :12], mask[:, :12]), (ids[:, 12:], mask[:, 12:])]
    means = segment_means(student, segs)
    assert len(means) == 2
    assert torch.allclose((means[0] + means[1]) / 2, pooled_segments(student, segs), atol=1e-6)
    alone = segment_means(student, segs[1:])[0]  # the second segment without the first's memory
    assert not torch.allclose(alone, means[1], atol=1e-4)


def test_idf_pooled_segments_train_the_pool_lam_ships():
    """token_idf=True is the encoder's segment-IDF pool (gate off) on the same segment states,
    differs from the mean, and passes gradients to the memory."""
    from lam.layers import RunningPool, masked_sum

    student, _, ids, mask = make_pair()
    ids[:, 12:18] = ids[:, :6]  # ids shared by both segments, so IDF re-weights them
    with torch.no_grad():
        for layer in student.layers:
            layer.attention.memory.read_gate.fill_(0.5)
    segs = [(ids[:, :12], mask[:, :12]), (ids[:, 12:], mask[:, 12:])]
    emb = pooled_segments(student, segs, token_idf=True)
    pool = RunningPool(3, student.config.hidden_size, 0.0, 1.0, token_idf=True)
    state = None
    with torch.no_grad():
        for i, (seg_ids, seg_mask) in enumerate(segs):
            hidden, state = student.forward_segment(seg_ids, seg_mask, state, write_memory=i == 0)
            pool.add([0, 1, 2], *masked_sum(hidden, seg_mask), (hidden, seg_mask, seg_ids))
    torch.testing.assert_close(emb.detach(), pool.embeddings(), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(emb, pooled_segments(student, segs), atol=1e-4)
    emb.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in student.named_parameters() if ".memory." in n)
    # Running prefixes: each pooled with its own IDF, as that prefix alone would be encoded.
    first, whole = pooled_segments(student, segs, prefixes=True, token_idf=True)
    torch.testing.assert_close(whole, emb)
    torch.testing.assert_close(first, pooled_segments(student, segs[:1], token_idf=True))
    assert not torch.allclose(first, whole, atol=1e-4)
