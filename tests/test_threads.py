"""Thread defaults follow the CPUs the process may use; threads= and --threads set them."""

from __future__ import annotations

import json
import os

import pytest
import torch
from click.testing import CliRunner

from lam import threads as lam_threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_available_cpus_follow_affinity_and_the_cgroup_quota(monkeypatch):
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(lam_threads, "_cgroup_quota", lambda: None)
    assert lam_threads.available_cpus() == affinity
    monkeypatch.setattr(lam_threads, "_cgroup_quota", lambda: 1.5)  # a container allowed 1.5 CPUs
    assert lam_threads.available_cpus() == 1
    monkeypatch.setattr(lam_threads, "_cgroup_quota", lambda: 0.2)
    assert lam_threads.available_cpus() == 1


def test_the_default_lowers_torch_to_the_available_cpus_and_respects_the_environment(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(lam_threads, "available_cpus", lambda: 1)
    torch.set_num_threads(2)
    assert lam_threads.set_threads(None) == 1 == torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user said so: left alone
    assert lam_threads.set_threads(None) == 2
    assert lam_threads.set_threads(1) == 1  # an explicit count always applies
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads"):
            lam_threads.set_threads(bad)


def test_lam_and_the_cli_take_threads(restore_threads):
    from lam import LAM
    from lam.cli.main import cli

    torch.set_num_threads(2)
    LAM(threads=1)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    result = CliRunner().invoke(cli, ["bench", "--threads", "1", "--texts", "4", "--long-tokens", "0"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["options"]["threads"] == 1
    assert CliRunner().invoke(cli, ["encode", "-", "--threads", "0"], input="x").exit_code == 2
