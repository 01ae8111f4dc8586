"""Token embeddings, exactly BERT's: word + position + token type, then LayerNorm."""

from __future__ import annotations

import torch
from torch import nn

from lam.config import LAMConfig


class Embeddings(nn.Module):
    """E = LayerNorm(word[ids] + position[0..T−1] + token_type[0]).

    Positions restart at 0 in every segment, so the teacher's 512-row table covers a text of
    any length: each segment is, to the embeddings, an ordinary BERT input.
    """

    def __init__(self, config: LAMConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        x = x + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)
