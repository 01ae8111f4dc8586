"""Gated delta rule: the linear associative memory of LAM, as pure functions.

Two implementations with one signature, state in → state out:

* :func:`recurrent_delta_rule` — the token-by-token reference, written exactly as the
  equation below. Slow (a Python loop over tokens) and obviously correct.
* :func:`chunked_delta_rule` — the same maths in chunks of ``C`` tokens (WY representation /
  UT transform, Yang et al. 2024): a few matmuls per chunk and one triangular solve, with
  the only sequential part being a loop over ``T / C`` chunks. This is the fast path.

Glossary (shapes use fla's ``[B, T, H, D]`` layout)::

    B  batch            T  tokens            H  heads
    Dk key dim          Dv value dim         C  chunk size
    q, k   [B, T, H, Dk]    queries / keys (callers L2-normalise k; q carries its own scale)
    v      [B, T, H, Dv]    values
    beta   [B, T, G·H]      write strength β_t ∈ [0, 1] of each of the G·H states
    g      [B, T, G·H]      log decay g_t ≤ 0, so α_t = exp(g_t) ∈ (0, 1]
    S      [B, G·H, Dk, Dv] the memory states; state j uses key/value head j mod H
    mask   [B, T] bool      False marks padding: the token neither writes, decays nor reads

G ≥ 1 states may share one key/value head (LAM's fast and slow states, G = 2): they differ
only in β and g, so the fast path computes the key-only work (K Kᵀ, the chunk layout) once.

Per state and token t (decay first, then the delta step, then the read)::

    S_t = α_t (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ
    o_t = S_tᵀ q_t

With ‖k_t‖ = 1 and β_t ∈ [0, 1] the transition has eigenvalues in [0, α_t], so the state
cannot grow without bound however long the text.
"""

from __future__ import annotations

import torch

__all__ = ["BATCH_GROUP", "chunked_delta_rule", "recurrent_delta_rule"]

BATCH_GROUP = 2  # rows per pass of the chunked kernel: its working set stays in cache


def _apply_mask(beta: torch.Tensor, g: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Padding writes nothing (β = 0) and decays nothing (g = 0)."""
    if mask is None:
        return beta, g
    m = mask.to(beta.dtype).unsqueeze(-1)  # [B, T, 1]
    return beta * m, g * m


def _check_inputs(q, k, v, beta, g, state) -> int:
    """Validate shapes; returns G, the number of state heads per key/value head."""
    if k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"k and v must be [B, T, H, D]; got {tuple(k.shape)} and {tuple(v.shape)}")
    B, T, H, Dk = k.shape
    if v.shape[:3] != (B, T, H):
        raise ValueError(f"v {tuple(v.shape)} does not match k {tuple(k.shape)}")
    if q is not None and q.shape != k.shape:
        raise ValueError(f"q {tuple(q.shape)} must match k {tuple(k.shape)}")
    if beta.dim() != 3 or beta.shape[:2] != (B, T) or beta.shape[2] % H or g.shape != beta.shape:
        raise ValueError(f"beta and g must be [B, T, G·H] with H = {H}; got {tuple(beta.shape)}, {tuple(g.shape)}")
    Hs = beta.shape[2]
    if state is not None and state.shape != (B, Hs, Dk, v.shape[-1]):
        raise ValueError(f"state must be {(B, Hs, Dk, v.shape[-1])}, got {tuple(state.shape)}")
    return Hs // H


def recurrent_delta_rule(
    q: torch.Tensor | None,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    g: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Reference gated delta rule, one token at a time.

    :param q: queries ``[B, T, H, Dk]``, or ``None`` to only write (no outputs computed).
    :param k: keys ``[B, T, H, Dk]``.
    :param v: values ``[B, T, H, Dv]``.
    :param beta: write strengths ``[B, T, G·H]``: G ≥ 1 states per key/value head, state head
        ``j`` using key/value head ``j mod H`` (LAM's fast and slow states share keys, G = 2).
    :param g: log decays ``[B, T, G·H]`` (≤ 0).
    :param initial_state: ``[B, G·H, Dk, Dv]``; zeros when ``None``.
    :param mask: ``[B, T]`` bool, ``False`` on padding.
    :returns: ``(o, final_state)`` with ``o`` ``[B, T, G·H, Dv]`` (zero on padding) or ``None``.
    """
    G = _check_inputs(q, k, v, beta, g, initial_state)
    # The obvious way to share keys: copy them to every state head.
    k, v = k.repeat(1, 1, G, 1), v.repeat(1, 1, G, 1)
    q = None if q is None else q.repeat(1, 1, G, 1)
    B, T, Hs, Dk = k.shape
    Dv = v.shape[-1]
    beta, g = _apply_mask(beta, g, mask)
    S = k.new_zeros(B, Hs, Dk, Dv) if initial_state is None else initial_state.clone()
    outs = []
    for t in range(T):
        k_t, v_t, b_t = k[:, t], v[:, t], beta[:, t, :, None]  # [B,H,Dk], [B,H,Dv], [B,H,1]
        S = S * g[:, t].exp()[..., None, None]
        v_hat = torch.einsum("bhkv,bhk->bhv", S, k_t)  # what the memory recalls for k_t
        S = S + torch.einsum("bhk,bhv->bhkv", k_t, b_t * (v_t - v_hat))  # write the error
        if q is not None:
            outs.append(torch.einsum("bhkv,bhk->bhv", S, q[:, t]))
    if q is None:
        return None, S
    o = torch.stack(outs, dim=1)
    if mask is not None:
        o = o * mask[:, :, None, None].to(o.dtype)
    return o, S


def chunked_delta_rule(
    q: torch.Tensor | None,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    g: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    chunk_size: int = 32,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Chunkwise-parallel gated delta rule (UT transform); same contract as the reference.

    Inside a chunk, with γ_i = Σ_{j≤i} g_j and L_ij = exp(γ_i − γ_j) for i ≥ j::

        A  = I + tril(diag(β) K Kᵀ ⊙ L, −1)         (unit lower triangular)
        U  = A⁻¹ diag(β) V,   W = A⁻¹ diag(β) (K ⊙ e^γ)
        V' = U − W S                                  (the corrected writes)
        O  = (Q ⊙ e^γ) S + (Q Kᵀ ⊙ L ⊙ M_≤) V'
        S' = e^{γ_C} S + (K ⊙ e^{γ_C − γ})ᵀ V'

    Chunk 32 (≈ head dim) is fastest on CPU: the intra-chunk cost grows as C². On CPU the cost
    is memory traffic, not arithmetic, so the layout is chosen once (chunks lead: ``[N, B, G,
    H, C, D]``, contiguous, so each step of the chunk loop reads contiguous blocks), the G
    states that share a key head share its K Kᵀ instead of copying the keys G times, a batch
    runs in groups of ``BATCH_GROUP`` rows (more rows at once fall out of cache: 2× slower per
    row at 8), and without autograd the ``[C, C]`` intermediates are updated in place.
    """
    G = _check_inputs(q, k, v, beta, g, initial_state)
    B, T, H, Dk = k.shape
    if B > BATCH_GROUP:
        parts = [
            chunked_delta_rule(
                None if q is None else q[i : i + BATCH_GROUP],
                k[i : i + BATCH_GROUP],
                v[i : i + BATCH_GROUP],
                beta[i : i + BATCH_GROUP],
                g[i : i + BATCH_GROUP],
                None if initial_state is None else initial_state[i : i + BATCH_GROUP],
                None if mask is None else mask[i : i + BATCH_GROUP],
                chunk_size,
            )
            for i in range(0, B, BATCH_GROUP)
        ]
        outs, states = zip(*parts)
        return (None if q is None else torch.cat(outs)), torch.cat(states)
    Dv = v.shape[-1]
    C = chunk_size
    beta, g = _apply_mask(beta, g, mask)
    S = k.new_zeros(B, G * H, Dk, Dv) if initial_state is None else initial_state
    if T == 0:
        return (q.new_zeros(B, 0, G * H, Dv) if q is not None else None), S.clone()
    # Without autograd, fresh intermediates are overwritten in place instead of copied.
    in_place = not (torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (q, k, v, beta, g, S)))

    # Pad to a multiple of C with tokens that neither write (β=0) nor decay (g=0).
    pad = (-T) % C
    N = (T + pad) // C

    def kv_chunks(x: torch.Tensor) -> torch.Tensor:  # [B, T, H, D] -> [N, B, 1, H, C, D]
        if pad:
            x = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, pad))
        return x.reshape(B, N, C, H, -1).permute(1, 0, 3, 2, 4).contiguous().unsqueeze(2)

    def gate_chunks(x: torch.Tensor) -> torch.Tensor:  # [B, T, G·H] -> [N, B, G, H, C] (a view)
        if pad:
            x = torch.nn.functional.pad(x, (0, 0, 0, pad))
        return x.reshape(B, N, C, G, H).permute(1, 0, 3, 4, 2)

    k_c, v_c = kv_chunks(k), kv_chunks(v)
    b_c = gate_chunks(beta)
    gamma = gate_chunks(g).cumsum(-1)  # contiguous

    # All intra-chunk quantities at once (parallel over chunks). γ falls along a chunk, so
    # γ_i − γ_j ≤ 0 on and below the diagonal; clamping the rest to 0 before exp keeps every
    # value finite (no ±inf, whatever the decays). A unit-triangular solve reads neither the
    # diagonal nor the upper triangle, so A needs no tril, no identity; the outputs' L does.
    L = gamma[..., :, None] - gamma[..., None, :]
    L = L.clamp_(max=0).exp_() if in_place else L.clamp(max=0).exp()
    if q is not None:
        q_c = kv_chunks(q)
        q_dec = q_c * gamma.exp()[..., None]
        qk = (q_c @ k_c.transpose(-1, -2)) * L.tril()
        outs = []
    kk = k_c @ k_c.transpose(-1, -2)
    A = L.mul_(b_c[..., :, None]).mul_(kk) if in_place else kk * b_c[..., :, None] * L  # [N, B, G, H, C, C]
    decayed_beta = (b_c * gamma.exp())[..., None]
    if in_place:
        rhs = k_c.new_empty(N, B, G, H, C, Dv + Dk)
        torch.mul(v_c, b_c[..., None], out=rhs[..., :Dv])
        torch.mul(k_c, decayed_beta, out=rhs[..., Dv:])
    else:
        rhs = torch.cat([v_c * b_c[..., None], k_c * decayed_beta], dim=-1)
    # X = A⁻¹ R, solved as Xᵀ Aᵀ = Rᵀ: LAPACK is column-major, so the transposed views need
    # no copies (about 4x faster than the direct call here).
    UW = torch.linalg.solve_triangular(
        A.transpose(-1, -2), rhs.transpose(-1, -2), upper=True, left=False, unitriangular=True
    ).transpose(-1, -2)
    U, W = UW[..., :Dv], UW[..., Dv:]
    decay_last = gamma[..., -1:]  # γ_C  [N, B, G, H, 1]
    k_tail = k_c * (decay_last - gamma).exp()[..., None]  # K ⊙ e^{γ_C − γ}
    state_decay = decay_last.exp()[..., None]  # [N, B, G, H, 1, 1]

    # The only sequential part: carry the state across chunks.
    S = S.reshape(B, G, H, Dk, Dv)
    for n in range(N):
        v_new = U[n] - W[n] @ S
        if q is not None:
            outs.append(q_dec[n] @ S + qk[n] @ v_new)
        S = state_decay[n] * S + k_tail[n].transpose(-1, -2) @ v_new
    S = S.reshape(B, G * H, Dk, Dv)

    if q is None:
        return None, S
    # [N, B, G, H, C, Dv] -> [B, N·C, G·H, Dv]
    o = torch.stack(outs).permute(1, 0, 4, 2, 3, 5).reshape(B, N * C, G * H, Dv)[:, :T]
    if mask is not None:
        o = o * mask[:, :, None, None].to(o.dtype)
    return o, S
