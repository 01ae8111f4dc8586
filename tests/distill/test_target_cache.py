"""The on-disk teacher-target cache: computes each sequence once, survives reopening, keeps
teachers apart, and returns what was computed (to fp16 precision)."""

import torch

from lam.distill.target_cache import TargetCache


def test_computes_only_missing_sequences_and_persists(tmp_path):
    calls = []

    def compute(seqs):
        calls.append([list(s) for s in seqs])
        return torch.tensor([[float(sum(s)), float(len(s)) / 3] for s in seqs])

    path = tmp_path / "targets.sqlite"
    cache = TargetCache(path, "teacher-a")
    first = cache.get_or_compute([[1, 2], [3], [1, 2]], compute)
    assert len(calls) == 1
    assert torch.allclose(first, torch.tensor([[3.0, 2 / 3], [3.0, 1 / 3], [3.0, 2 / 3]]), atol=1e-3)
    second = cache.get_or_compute([[3], [4, 5]], compute)
    assert calls[-1] == [[4, 5]]  # [3] came from disk
    assert torch.allclose(second[0], first[1]) and cache.hits >= 1
    cache.close()

    reopened = TargetCache(path, "teacher-a")
    n_calls = len(calls)
    again = reopened.get_or_compute([[1, 2], [4, 5]], compute)
    assert len(calls) == n_calls and torch.equal(again[0], first[0])
    other = TargetCache(path, "teacher-b")  # another teacher's targets are not reused
    other.get_or_compute([[1, 2]], compute)
    assert len(calls) == n_calls + 1
