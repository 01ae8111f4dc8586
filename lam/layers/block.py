"""One LAM layer: BERT's post-LayerNorm block with the token mixer swapped."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lam.config import LAMConfig
from lam.layers.attention import SegmentMemoryAttention


class LAMBlock(nn.Module):
    """x' = LN(x + Mix(x));  y = LN(x' + W₂ GELU(W₁ x'))  — as in BERT, Mix aside."""

    def __init__(self, config: LAMConfig) -> None:
        super().__init__()
        self.attention = SegmentMemoryAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn_in = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_out = nn.Linear(config.intermediate_size, config.hidden_size)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, state: torch.Tensor | None, write_memory: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # The Linears' precision (bf16 with quantize="bf16", else fp32): they get their inputs in
        # it, while the residual stream and the norms stay fp32 (fp32 + bf16 promotes to fp32).
        compute = self.ffn_in.weight.dtype
        mixed, new_state = self.attention(x.to(compute), mask, state, write_memory)
        x = self.attention_norm(x + mixed)
        x = self.ffn_norm(x + self.ffn_out(F.gelu(self.ffn_in(x.to(compute)))))
        return x, new_state
