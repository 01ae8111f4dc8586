"""The memory layer: closed gates are exact no-ops, decays start at the configured timescales,
and padding leaves the state untouched."""

import torch

from lam.layers.memory import FAST_RETENTION, SLOW_RETENTION, AssociativeMemory
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
    assert torch.allclose(per_segment[:H], torch.full((H,), FAST_RETENTION), atol=1e-5)
    assert torch.allclose(per_segment[H:], torch.full((H,), SLOW_RETENTION), atol=1e-5)


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


def _normalized_map(x, weight):
    return torch.nn.functional.normalize(torch.einsum("bthd,hde->bthe", x, weight), dim=-1)


def test_read_is_the_gated_sum_of_both_states_reads():
    """The folded read (λ_f S_f + λ_s S_s)ᵀq̃ equals reading each state and gating the reads."""
    config, mem = make()
    H, D = config.num_heads, config.head_dim
    with torch.no_grad():
        mem.read_gate.normal_()
        mem.query_map.add_(0.3 * torch.randn_like(mem.query_map))
    q = torch.randn(2, 7, H, D)
    state = torch.randn(2, 2 * H, D, D)
    q_mem = _normalized_map(q, mem.query_map)
    fast = torch.einsum("bthk,bhkv->bthv", q_mem, state[:, :H]) * mem.read_gate[:H, None]
    slow = torch.einsum("bthk,bhkv->bthv", q_mem, state[:, H:]) * mem.read_gate[H:, None]
    assert torch.allclose(mem.read(q, state), fast + slow, atol=1e-5)


def test_write_is_the_delta_rule_on_both_timescales():
    """write() runs the reference recurrence with the fast and slow gates over shared keys."""
    from lam.memory.delta_rule import recurrent_delta_rule

    config, mem = make()
    B, T, H, D = 2, 40, config.num_heads, config.head_dim
    with torch.no_grad():
        mem.beta_proj.weight.normal_(0, 0.3)
        mem.decay_proj.weight.normal_(0, 0.3)
    x, k, v = torch.randn(B, T, config.hidden_size), torch.randn(B, T, H, D), torch.randn(B, T, H, D)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 25:] = False
    state = torch.randn(B, 2 * H, D, D)
    beta = torch.sigmoid(mem.beta_proj(x))
    g = -mem.log_rate.exp() * torch.nn.functional.softplus(mem.decay_proj(x) + mem.decay_bias)
    k_mem = _normalized_map(k, mem.key_map)
    _, ref = recurrent_delta_rule(None, k_mem.repeat(1, 1, 2, 1), v.repeat(1, 1, 2, 1), beta, g, state, mask)
    assert torch.allclose(mem.write(x, k, v, mask, state), ref, atol=1e-4)
