"""Distillation objectives on a tiny random model: well-defined, memory-only, and learnable."""

import torch

from lam import LAMConfig
from lam.distill.objectives import embedding_distillation_loss, pooled_segments, teacher_layer_inputs
from lam.model import LAMModel
from tests.conftest import tiny_config


def make_pair():
    torch.manual_seed(0)
    student = LAMModel(tiny_config(segment_len=12))
    teacher = LAMModel(LAMConfig.from_dict({**student.config.to_dict(), "segment_len": 24, "memory": False}))
    teacher.load_state_dict({k: v for k, v in student.state_dict().items() if ".memory." not in k})
    ids = torch.randint(4, student.config.vocab_size, (3, 24))
    return student, teacher, ids, torch.ones_like(ids, dtype=torch.bool)


def test_pooled_segments_and_embedding_loss():
    student, teacher, ids, mask = make_pair()
    segs = [(ids[:, :12], mask[:, :12]), (ids[:, 12:], mask[:, 12:])]
    emb = pooled_segments(student, segs)
    assert emb.shape == (3, student.config.hidden_size)
    target = teacher_layer_inputs(teacher, ids, mask)[-1].mean(1)
    loss = embedding_distillation_loss(emb, target)
    assert 0 <= float(loss.detach()) < 1
    assert float(embedding_distillation_loss(target, target)) < 1e-6


def test_info_nce_prefers_matching_pairs_for_cloze():
    from lam.distill.objectives import info_nce

    torch.manual_seed(0)
    passages = torch.randn(6, 16)
    aligned = info_nce(passages + 0.01 * torch.randn(6, 16), passages)
    shuffled = info_nce(passages[torch.randperm(6)], passages)
    assert float(aligned) < 0.01 < float(shuffled)


def test_pooled_segments_are_the_runners_mean_pool_and_train_the_memory():
    """Training's differentiable pool is the inference pool ``"mean"`` on the same segment states
    (memory carried), prefixes are pooled as the prefix alone would be, and gradients reach the
    memory and nothing else."""
    from lam.layers import RunningPool, masked_sum
    from lam.runner import to_embeddings

    student, _, ids, mask = make_pair()
    with torch.no_grad():
        for layer in student.layers:
            layer.attention.memory.read_gate.fill_(0.5)  # the memory is read, and carried
    segs = [(ids[:, :12], mask[:, :12]), (ids[:, 12:], mask[:, 12:])]
    first, whole = pooled_segments(student, segs, prefixes=True)
    pool, state = RunningPool(3, student.config.hidden_size, "mean"), None
    with torch.no_grad():
        for i, (seg_ids, seg_mask) in enumerate(segs):
            hidden, state = student.forward_segment(seg_ids, seg_mask, state, write_memory=i == 0)
            pool.add([0, 1, 2], *masked_sum(hidden, seg_mask))
    torch.testing.assert_close(whole.detach(), to_embeddings(*pool.sums(), normalize=False), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(first, pooled_segments(student, segs[:1]))
    alone = pooled_segments(student, segs[1:])  # the second segment without the first's memory
    assert not torch.allclose(alone, pooled_segments(student, segs), atol=1e-4)
    whole.sum().backward()
    grads = {n for n, p in student.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads and any(".memory." in n for n in grads)


def test_idf_pooled_segments_is_segment_idf_on_ungated_text_and_differentiable():
    """The training pool equals the inference pool's reference (:func:`pool_reference`) on text
    whose segments are all fresh (gate 1), keeps the plain mean for a text of at most 510 tokens,
    and passes gradients to the hidden states."""
    from lam.distill.objectives import idf_pooled_segments
    from lam.layers.pooling import pool_reference

    torch.manual_seed(0)
    B, S, T, D, V = 2, 8, 80, 64, 50
    segments, states = [], []
    for _ in range(S):
        ids = torch.randint(5, V, (B, T))
        ids[:, 0], ids[:, -1] = 1, 2  # [CLS], [SEP]: in every segment, u = 0
        ids[:, 3] = 4  # an id in every segment (a speaker label): drops out
        mask = torch.ones(B, T, dtype=torch.bool)
        mask[1, T - 10 :] = False  # padding in row 1
        ids[1, T - 11] = 2
        segments.append((ids, mask))
        states.append(torch.randn(B, T, D, requires_grad=True))
    pooled = idf_pooled_segments(states, segments, V)
    for b in range(B):
        lengths = [int(m[b].sum()) for _, m in segments]
        want = pool_reference(
            [h[b, :n].detach() for h, n in zip(states, lengths)],
            [ids[b, :n].tolist() for (ids, _), n in zip(segments, lengths)],
            "segment-idf",
        )
        torch.testing.assert_close(pooled[b].detach(), want, rtol=1e-4, atol=1e-5)
    pooled.sum().backward()
    assert states[0].grad is not None and float(states[0].grad.abs().sum()) > 0
    assert float(states[0].grad[0, 0].abs().sum()) == 0  # [CLS] weighs nothing
    short = idf_pooled_segments([h[:, :40] for h in states[:2]], [(i[:, :40], m[:, :40]) for i, m in segments[:2]], V)
    plain = sum(h[:, :40].sum(1) for h in states[:2]) / 80
    torch.testing.assert_close(short[0].detach(), plain[0].detach())


def test_info_nce_prefers_matching_pairs_for_retrieval():
    from lam.distill.objectives import info_nce

    torch.manual_seed(0)
    docs = torch.randn(6, 16)
    assert float(info_nce(docs + 0.01 * torch.randn(6, 16), docs)) < 0.01
    assert float(info_nce(docs[torch.randperm(6)], docs)) > 0.01
