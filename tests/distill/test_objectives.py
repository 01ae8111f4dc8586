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


def test_passage_recall_loss_prefers_matching_pairs():
    from lam.distill.objectives import passage_recall_loss

    torch.manual_seed(0)
    passages = torch.randn(6, 16)
    aligned = passage_recall_loss(passages + 0.01 * torch.randn(6, 16), passages)
    shuffled = passage_recall_loss(passages[torch.randperm(6)], passages)
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
