"""The associative memory of one layer: a fast and a slow gated delta-rule state per head.

Notation (per layer; h indexes the H heads, s ∈ {fast, slow})::

    k̃_t^h = normalize(K_h^mem k_t^h)          memory key (teacher key through a learned map)
    q̃_t^h = normalize(Q_h^mem q_t^h)          memory query (same for queries)
    β_t^{h,s} = σ(w_β^{h,s} · x_t + b_β^{h,s})                         write strength
    g_t^{h,s} = −exp(a^{h,s}) · softplus(w_g^{h,s} · x_t + b_g^{h,s})  log decay, α = e^g
    S^{h,s} ← α_t (I − β_t k̃_t k̃_tᵀ) S^{h,s} + β_t k̃_t v_tᵀ          (lam.memory.delta_rule)
    read_t^h = λ_fast^h · S_fast^{h ᵀ} q̃_t^h + λ_slow^h · S_slow^{h ᵀ} q̃_t^h

The two timescales are initialised so that one segment of W tokens keeps ≈ 0.3 (fast) and
≈ 0.85 (slow) of the state (``FAST_RETENTION`` / ``SLOW_RETENTION``); the x-dependent
term lets each token forget faster or slower. The read gates λ start at exactly 0, so an
untrained memory leaves the model equal to the windowed teacher. K^mem and Q^mem start as the
identity; they exist so training can reshape the memory's geometry without touching the
teacher's own Q/K, which still drive the exact attention inside the segment.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lam.config import LAMConfig
from lam.memory.delta_rule import chunked_delta_rule

# Initialisation: the fraction of the state one segment keeps, exp(−r·W) = retention.
FAST_RETENTION = 0.3
SLOW_RETENTION = 0.85


class AssociativeMemory(nn.Module):
    """Parameters and read/write of one layer's dual-timescale memory (2·H delta-rule heads)."""

    def __init__(self, config: LAMConfig) -> None:
        super().__init__()
        H, D = config.num_heads, config.head_dim
        self.num_heads, self.head_dim = H, D
        eye = torch.eye(D).expand(H, D, D).clone()
        self.query_map = nn.Parameter(eye.clone())  # Q^mem [H, D, D]
        self.key_map = nn.Parameter(eye.clone())  # K^mem [H, D, D]
        # Heads 0..H−1 are the fast state, H..2H−1 the slow one.
        self.beta_proj = nn.Linear(config.hidden_size, 2 * H)
        self.decay_proj = nn.Linear(config.hidden_size, 2 * H)
        rates = [-math.log(r) / config.segment_len for r in [FAST_RETENTION] * H + [SLOW_RETENTION] * H]
        self.log_rate = nn.Parameter(torch.tensor(rates).log())  # a
        self.decay_bias = nn.Parameter(torch.full((2 * H,), math.log(math.e - 1)))  # softplus(b_g)=1
        self.read_gate = nn.Parameter(torch.zeros(2 * H))  # λ: closed until trained
        nn.init.normal_(self.beta_proj.weight, std=0.02)
        nn.init.zeros_(self.beta_proj.bias)
        nn.init.normal_(self.decay_proj.weight, std=0.02)
        nn.init.zeros_(self.decay_proj.bias)

    @torch.no_grad()
    def close_read_gates(self, timescale: str) -> None:
        """Set λ of the ``"fast"`` or ``"slow"`` state to 0 (an ablation: that state is never read)."""
        H = self.num_heads
        heads = {"fast": slice(0, H), "slow": slice(H, 2 * H)}
        if timescale not in heads:
            raise ValueError(f"timescale must be 'fast' or 'slow', not {timescale!r}")
        self.read_gate[heads[timescale]] = 0.0

    @property
    def dtype(self) -> torch.dtype:
        """The memory's precision (its parameters'): the state, reads and writes are computed in
        it whatever the precision of the layer's Linears, so a bf16 model keeps an fp32 state."""
        return self.query_map.dtype

    def init_state(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """An empty memory: ``[B, 2H, D, D]`` zeros."""
        return torch.zeros(batch, 2 * self.num_heads, self.head_dim, self.head_dim, device=device, dtype=self.dtype)

    def _map(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Per-head linear map then L2 norm: ``[B, T, H, D] → [B, T, H, D]``."""
        return F.normalize(torch.einsum("bthd,hde->bthe", x, weight), dim=-1)

    def read(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Gated sum of the fast and slow reads: q ``[B, T, H, D]``, state ``[B, 2H, D, D]``.

        λ_f S_fᵀq̃ + λ_s S_sᵀq̃ = (λ_f S_f + λ_s S_s)ᵀ q̃: the gates are folded into one
        ``[B, H, D, D]`` state first (D² per head), so the tokens are read once, not twice.
        """
        B, H, D = state.shape[0], self.num_heads, self.head_dim
        q = q.to(self.dtype)
        gates = self.read_gate.view(2, H, 1, 1)
        gated_state = (state.view(B, 2, H, D, D) * gates).sum(1)
        return torch.einsum("bthk,bhkv->bthv", self._map(q, self.query_map), gated_state)

    def write(
        self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, state: torch.Tensor
    ) -> torch.Tensor:
        """Write a segment's tokens into both states; returns the new state.

        x ``[B, T, hidden]`` is the layer input (drives β and the decay); k, v ``[B, T, H, D]``.
        """
        x, k, v = x.to(self.dtype), k.to(self.dtype), v.to(self.dtype)
        k_mem = self._map(k, self.key_map)
        beta = torch.sigmoid(self.beta_proj(x))  # [B, T, 2H]: both states share k̃ and v
        g = -self.log_rate.exp() * F.softplus(self.decay_proj(x) + self.decay_bias)
        _, new_state = chunked_delta_rule(None, k_mem, v, beta, g, state, mask=mask)
        return new_state
