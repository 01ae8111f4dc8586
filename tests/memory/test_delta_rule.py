"""Invariant 2: the chunked delta rule equals the token-by-token recurrence."""

import pytest
import torch

from lam.memory.delta_rule import BATCH_GROUP, chunked_delta_rule, recurrent_delta_rule

TOL = {torch.float64: 1e-10, torch.float32: 2e-5}


def make_inputs(B=2, T=45, H=3, Dk=8, Dv=6, dtype=torch.float64, seed=0, decay=0.2):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, T, H, Dk, generator=g, dtype=dtype)
    k = torch.nn.functional.normalize(torch.randn(B, T, H, Dk, generator=g, dtype=dtype), dim=-1)
    v = torch.randn(B, T, H, Dv, generator=g, dtype=dtype)
    beta = torch.rand(B, T, H, generator=g, dtype=dtype)
    log_decay = -decay * torch.rand(B, T, H, generator=g, dtype=dtype)
    state = torch.randn(B, H, Dk, Dv, generator=g, dtype=dtype)
    return q, k, v, beta, log_decay, state


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("T,chunk", [(1, 4), (31, 8), (32, 32), (45, 16), (100, 32), (128, 64)])
def test_chunked_matches_recurrent(dtype, T, chunk):
    q, k, v, beta, g, s0 = make_inputs(T=T, dtype=dtype)
    o_ref, s_ref = recurrent_delta_rule(q, k, v, beta, g, s0)
    o, s = chunked_delta_rule(q, k, v, beta, g, s0, chunk_size=chunk)
    assert rel_err(o, o_ref) < TOL[dtype]
    assert rel_err(s, s_ref) < TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_state_carried_across_calls_equals_one_pass(dtype):
    q, k, v, beta, g, s0 = make_inputs(T=70, dtype=dtype)
    o_full, s_full = chunked_delta_rule(q, k, v, beta, g, s0, chunk_size=16)
    cut = 29  # not a chunk multiple
    o1, s1 = chunked_delta_rule(q[:, :cut], k[:, :cut], v[:, :cut], beta[:, :cut], g[:, :cut], s0, chunk_size=16)
    o2, s2 = chunked_delta_rule(q[:, cut:], k[:, cut:], v[:, cut:], beta[:, cut:], g[:, cut:], s1, chunk_size=16)
    assert rel_err(torch.cat([o1, o2], 1), o_full) < TOL[dtype]
    assert rel_err(s2, s_full) < TOL[dtype]
    # and the reference agrees across the same split
    _, r1 = recurrent_delta_rule(q[:, :cut], k[:, :cut], v[:, :cut], beta[:, :cut], g[:, :cut], s0)
    _, r2 = recurrent_delta_rule(q[:, cut:], k[:, cut:], v[:, cut:], beta[:, cut:], g[:, cut:], r1)
    assert rel_err(r2, s_full) < TOL[dtype]


@pytest.mark.parametrize("fn", [recurrent_delta_rule, chunked_delta_rule])
def test_padding_neither_writes_nor_reads(fn):
    q, k, v, beta, g, s0 = make_inputs(B=1, T=20)
    mask = torch.ones(1, 20, dtype=torch.bool)
    mask[0, 13:] = False  # right padding
    o, s = fn(q, k, v, beta, g, s0, mask=mask)
    o_short, s_short = fn(q[:, :13], k[:, :13], v[:, :13], beta[:, :13], g[:, :13], s0)
    assert torch.allclose(s, s_short, atol=1e-12)
    assert torch.allclose(o[:, :13], o_short, atol=1e-12)
    assert torch.all(o[:, 13:] == 0)
    # padding in the middle: removing the pad tokens changes nothing
    mask = torch.ones(1, 20, dtype=torch.bool)
    mask[0, 5:9] = False
    keep = mask[0]
    _, s_mid = fn(q, k, v, beta, g, s0, mask=mask)
    _, s_dense = fn(q[:, keep], k[:, keep], v[:, keep], beta[:, keep], g[:, keep], s0)
    assert torch.allclose(s_mid, s_dense, atol=1e-12)


def test_write_only_mode_gives_same_state():
    q, k, v, beta, g, s0 = make_inputs(T=50)
    _, s = chunked_delta_rule(q, k, v, beta, g, s0, chunk_size=16)
    none_out, s_write = chunked_delta_rule(None, k, v, beta, g, s0, chunk_size=16)
    assert none_out is None
    assert torch.allclose(s, s_write, atol=1e-12)
    assert recurrent_delta_rule(None, k, v, beta, g, s0)[0] is None


def test_delta_rule_recalls_a_stored_association():
    """Writing (k, v) with β=1 and no decay makes Sᵀk return v exactly (the delta rule's point)."""
    D = 8
    k = torch.nn.functional.normalize(torch.randn(1, 1, 1, D, dtype=torch.float64), dim=-1)
    v = torch.randn(1, 1, 1, D, dtype=torch.float64)
    s0 = torch.randn(1, 1, D, D, dtype=torch.float64)  # whatever was there before
    ones, zeros = torch.ones(1, 1, 1, dtype=torch.float64), torch.zeros(1, 1, 1, dtype=torch.float64)
    _, s = chunked_delta_rule(None, k, v, ones, zeros, s0)
    recalled = torch.einsum("bhkv,k->v", s, k[0, 0, 0])
    assert torch.allclose(recalled, v[0, 0, 0], atol=1e-12)


def test_state_stays_bounded_over_many_tokens():
    q, k, v, beta, g, _ = make_inputs(B=1, T=4096, H=2, Dk=8, Dv=8, dtype=torch.float32, decay=0.0)
    _, s = chunked_delta_rule(q, k, v, beta, g, None, chunk_size=32)
    assert torch.isfinite(s).all()
    assert s.abs().max() < 50 * v.abs().max()


def test_bad_shapes_raise():
    q, k, v, beta, g, s0 = make_inputs()
    with pytest.raises(ValueError):
        chunked_delta_rule(q, k, v, beta[..., :1], g, s0)
    with pytest.raises(ValueError):
        chunked_delta_rule(q, k, v, beta, g, s0[:, :1])
    with pytest.raises(ValueError):
        recurrent_delta_rule(q[..., :2], k, v, beta, g, s0)


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_states_sharing_keys_match_copied_keys(groups):
    """G states per key/value head (LAM's fast and slow, G = 2) equal G copies of the keys."""
    q, k, v, _, _, _ = make_inputs(T=70)
    B, T, H, Dk = k.shape
    gen = torch.Generator().manual_seed(1)
    beta = torch.rand(B, T, groups * H, generator=gen, dtype=k.dtype)
    g = -0.3 * torch.rand(B, T, groups * H, generator=gen, dtype=k.dtype)
    s0 = torch.randn(B, groups * H, Dk, v.shape[-1], generator=gen, dtype=k.dtype)
    copies = [x.repeat(1, 1, groups, 1) for x in (q, k, v)]
    o_ref, s_ref = recurrent_delta_rule(*copies, beta, g, s0)
    o_shared, s_shared = recurrent_delta_rule(q, k, v, beta, g, s0)
    o, s = chunked_delta_rule(q, k, v, beta, g, s0, chunk_size=16)
    assert o.shape == (B, T, groups * H, v.shape[-1]) and s.shape == s0.shape
    assert torch.equal(o_shared, o_ref) and torch.equal(s_shared, s_ref)
    assert rel_err(o, o_ref) < TOL[torch.float64]
    assert rel_err(s, s_ref) < TOL[torch.float64]


def test_gradients_match_the_recurrence():
    """Training backpropagates through the fast path: its gradients are the reference's."""
    q, k, v, beta, g, s0 = make_inputs(T=40)
    grads = []
    for fn in (recurrent_delta_rule, lambda *a: chunked_delta_rule(*a, chunk_size=16)):
        leaves = [x.clone().requires_grad_() for x in (q, k, v, beta, g, s0)]
        o, s = fn(*leaves)
        (o.square().sum() + s.sin().sum()).backward()
        grads.append([x.grad for x in leaves])
    for ref, fast in zip(*grads):
        assert rel_err(fast, ref) < 1e-9


def test_strong_forgetting_stays_finite():
    """Decays of e^-30 per token: no overflow, no NaN, and the old state is forgotten."""
    q, k, v, beta, g, s0 = make_inputs(T=64, dtype=torch.float32)
    o_ref, s_ref = recurrent_delta_rule(q, k, v, beta, torch.full_like(g, -30.0), s0)
    o, s = chunked_delta_rule(q, k, v, beta, torch.full_like(g, -30.0), s0)
    assert torch.isfinite(o).all() and torch.isfinite(s).all()
    assert rel_err(o, o_ref) < TOL[torch.float32] and rel_err(s, s_ref) < TOL[torch.float32]


def test_a_batch_larger_than_one_pass_equals_the_recurrence():
    """Rows run in groups of BATCH_GROUP (for cache); every row, padded or not, is the reference's."""
    B = 2 * BATCH_GROUP + 1
    q, k, v, beta, g, s0 = make_inputs(B=B, T=50)
    mask = torch.ones(B, 50, dtype=torch.bool)
    mask[1, 30:] = False
    mask[B - 1, 7:] = False
    o_ref, s_ref = recurrent_delta_rule(q, k, v, beta, g, s0, mask=mask)
    o, s = chunked_delta_rule(q, k, v, beta, g, s0, mask=mask, chunk_size=16)
    assert rel_err(o, o_ref) < TOL[torch.float64] and rel_err(s, s_ref) < TOL[torch.float64]
    _, s_write = chunked_delta_rule(None, k, v, beta, g, s0, mask=mask, chunk_size=16)
    assert rel_err(s_write, s_ref) < TOL[torch.float64]


def test_the_in_place_path_equals_the_autograd_path():
    """Without autograd the kernel overwrites its intermediates; with it, it cannot: same numbers."""
    q, k, v, beta, g, s0 = make_inputs(T=70)
    with torch.no_grad():
        o_fast, s_fast = chunked_delta_rule(q, k, v, beta, g, s0, chunk_size=16)
    leaves = [x.clone().requires_grad_() for x in (q, k, v, beta, g, s0)]
    o_grad, s_grad = chunked_delta_rule(*leaves, chunk_size=16)
    assert o_grad.requires_grad
    assert rel_err(o_fast, o_grad.detach()) < 1e-12 and rel_err(s_fast, s_grad.detach()) < 1e-12
