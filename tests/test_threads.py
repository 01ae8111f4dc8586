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


def test_the_default_follows_the_cores_other_processes_leave_free(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(lam_threads, "ADAPT_EVERY_S", 0.0)
    monkeypatch.setattr(lam_threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(lam_threads, "available_cpus", lambda: 2)
    busy = [1]
    monkeypatch.setattr(lam_threads, "busy_elsewhere", lambda: busy[0])
    torch.set_num_threads(2)
    assert lam_threads.set_threads(None) == 2
    assert lam_threads.adapt() == 1 == torch.get_num_threads()  # another process holds a core
    busy[0] = 0
    assert lam_threads.adapt() == 2 == torch.get_num_threads()  # it finished: both cores again
    busy[0] = 5
    assert lam_threads.adapt() == 1  # never below one
    assert lam_threads.set_threads(None) == 2  # a second model keeps the ceiling adapt() lowered from
    assert lam_threads.adapt() == 1
    lam_threads.set_threads(2)  # an explicit count is kept whatever the machine does
    assert lam_threads.adapt() == 2


def test_busy_elsewhere_reads_the_machine():
    busy = lam_threads.busy_elsewhere()
    assert busy is None or busy >= 0


def test_long_text_work_checks_the_threads_between_segments(monkeypatch, tiny_lam, long_text):
    import lam.runner

    calls = [0]
    monkeypatch.setattr(lam.runner, "adapt_threads", lambda: calls.__setitem__(0, calls[0] + 1))
    tiny_lam.encode(long_text)
    encoded = calls[0]
    stream = tiny_lam.stream()
    stream.feed(long_text)
    assert encoded > 1 and calls[0] > encoded + 1


def test_every_command_that_runs_the_model_takes_threads():
    from lam.cli.main import cli

    for command in ("encode", "index", "search", "serve", "eval", "bench", "distill", "embed-corpus", "import-corpus"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "--threads" in result.output, command
