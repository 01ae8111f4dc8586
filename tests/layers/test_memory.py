"""The memory layer: closed gates are exact no-ops, decays start at the configured timescales,
and padding leaves the state untouched."""

import torch

from lam.layers.memory import AssociativeMemory
from tests.conftest import tiny_config


def make(seed=0):
    torch.manual_seed(seed)
    config = tiny_config()
    return config, AssociativeMemory(config)


def test_closed_gates_read_exactly_zero():
    config, mem = make()
    q = torch.randn(2, 5, config.num_heads, config.head_dim)
    state = torch.randn(2, 2 * config.num_heads, config.head_dim, config.head_dim)
    assert torch.count_nonzero(mem.read(q, state)) == 0
    with torch.no_grad():
        mem.read_gate.fill_(1.0)
    assert torch.count_nonzero(mem.read(q, state)) > 0


def test_initial_decay_matches_fast_and_slow_retention():
    config, mem = make()
    with torch.no_grad():
        mem.decay_proj.weight.zero_()  # the input-independent part only
        x = torch.randn(1, config.segment_len, config.hidden_size)
        g = -mem.log_rate.exp() * torch.nn.functional.softplus(mem.decay_proj(x) + mem.decay_bias)
    per_segment = g.sum(1).exp()[0]
    H = config.num_heads
    assert torch.allclose(per_segment[:H], torch.full((H,), config.fast_retention), atol=1e-5)
    assert torch.allclose(per_segment[H:], torch.full((H,), config.slow_retention), atol=1e-5)


def test_decay_depends_on_the_input():
    config, mem = make()
    x = torch.randn(1, 4, config.hidden_size)
    g = -mem.log_rate.exp() * torch.nn.functional.softplus(mem.decay_proj(x) + mem.decay_bias)
    assert g.std(dim=1).min() > 0  # tokens forget at different rates


def test_padding_leaves_state_unchanged():
    config, mem = make()
    B, T, H, D = 1, 6, config.num_heads, config.head_dim
    x = torch.randn(B, T, config.hidden_size)
    k, v = torch.randn(B, T, H, D), torch.randn(B, T, H, D)
    state = torch.randn(B, 2 * H, D, D)
    mask = torch.zeros(B, T, dtype=torch.bool)
    assert torch.equal(mem.write(x, k, v, mask, state), state)
    mask[0, :3] = True
    with_pad = mem.write(x, k, v, mask, state)
    without = mem.write(x[:, :3], k[:, :3], v[:, :3], mask[:, :3], state)
    assert torch.allclose(with_pad, without, atol=1e-6)


def test_close_read_gates_silences_one_state_only():
    config, mem = make()
    H = config.num_heads
    with torch.no_grad():
        mem.read_gate.fill_(1.0)
    q = torch.randn(1, 3, H, config.head_dim)
    fast = torch.randn(1, H, config.head_dim, config.head_dim)
    state = torch.cat([fast, torch.zeros_like(fast)], dim=1)  # only the fast state holds anything
    mem.close_read_gates("slow")
    assert torch.count_nonzero(mem.read(q, state)) > 0 and float(mem.read_gate[H:].abs().sum()) == 0
    mem.close_read_gates("fast")
    assert torch.count_nonzero(mem.read(q, state)) == 0
    with torch.no_grad():
        mem.read_gate.fill_(1.0)
    try:
        mem.close_read_gates("medium")
    except ValueError as err:
        assert "fast" in str(err)
    else:
        raise AssertionError("expected ValueError")
