"""Token mixing of one layer: exact softmax attention inside the segment + memory read/write."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lam.config import LAMConfig
from lam.layers.memory import AssociativeMemory


class SegmentMemoryAttention(nn.Module):
    """ctx = softmax(Q Kᵀ/√d + mask) V  +  memory read of the state left by earlier segments.

    The first term is the teacher's own bidirectional attention restricted to one segment of
    at most W tokens (cost O(W) per token); the second is O(d²) per token. The output
    projection W_O then acts on their sum, as it did on the teacher's attention output.
    """

    def __init__(self, config: LAMConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.output = nn.Linear(d, d)
        self.memory = AssociativeMemory(config) if config.memory else None

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        state: torch.Tensor | None,
        write_memory: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x ``[B, T, d]``, mask ``[B, T]`` bool; state ``[B, 2H, D, D]`` or None (empty).

        The attention runs in x's precision, the memory in its own (fp32, see
        :class:`AssociativeMemory`); the output projection gets x's precision back.

        Returns the projected attention output ``[B, T, d]`` and the state after this segment
        (None when ``write_memory`` is False or the layer has no memory).
        """
        B, T, _ = x.shape
        heads = (B, T, self.num_heads, self.head_dim)
        q, k, v = self.query(x).view(heads), self.key(x).view(heads), self.value(x).view(heads)
        # An additive mask: with a boolean one the bf16 CPU kernel runs 3x slower (fp32: the same).
        bias = torch.zeros(B, 1, 1, T, dtype=q.dtype, device=x.device).masked_fill(~mask[:, None, None, :], -torch.inf)
        ctx = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=bias
        ).transpose(1, 2)  # [B, T, H, D]
        new_state = None
        if self.memory is not None:
            if state is not None:  # an empty memory reads as zero: skip the work
                ctx = ctx + self.memory.read(q, state)
            if write_memory:
                if state is None:
                    state = self.memory.init_state(B, x.device)
                new_state = self.memory.write(x, k, v, mask, state)
        return self.output(ctx.reshape(B, T, -1).to(x.dtype)), new_state
