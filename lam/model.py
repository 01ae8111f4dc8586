"""The LAM encoder network, top to bottom.

A text is cut into segments of W tokens ([CLS] body [SEP], positions 0..W−1 in each). Every
segment runs through all six layers before the next one starts ("vertical" processing), so
only the per-layer memory states and the running pooled sum travel from one segment to the
next: peak memory is fixed by W, whatever the length of the text.

    ids ─► Embeddings ─► [LAMBlock × 6] ─► running pool (lam.layers.pooling) ─► L2 norm
                           │  ▲
                           ▼  │   per layer: exact softmax attention inside the segment
                        memory S   + gated read of the delta-rule state S left by earlier
                                   segments; then the segment's tokens are written into S.

References: BERT / all-MiniLM-L6-v2 (the teacher, reproduced exactly inside one segment);
Infini-attention (segment attention + compressive memory, arXiv 2404.07143); Gated DeltaNet
(the memory update, arXiv 2412.06464).
"""

from __future__ import annotations

import torch
from torch import nn

from lam.config import LAMConfig
from lam.layers import Embeddings, LAMBlock

MemoryState = list[torch.Tensor]  # one [B, 2H, D, D] tensor per layer


class LAMModel(nn.Module):
    """Embeddings and the six LAM blocks, one segment at a time; the segment loop is :mod:`lam.runner`."""

    def __init__(self, config: LAMConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(LAMBlock(config) for _ in range(config.num_layers))

    @property
    def has_memory(self) -> bool:
        return self.config.memory

    def memory_is_read(self) -> bool:
        """Whether any layer reads its memory (some read gate λ ≠ 0).

        When none does, the state cannot change any output, so inference (``encode``, streams,
        indexing) skips writing it; training always writes, since closed gates still learn.
        """
        return self.has_memory and any(
            bool(layer.attention.memory.read_gate.detach().ne(0).any())
            for layer in self.layers
            if layer.attention.memory is not None
        )

    def forward_segment(
        self,
        input_ids: torch.Tensor,
        mask: torch.Tensor,
        state: MemoryState | None = None,
        write_memory: bool = True,
    ) -> tuple[torch.Tensor, MemoryState | None]:
        """Run one segment through every layer.

        :param input_ids: ``[B, T]`` token ids, T ≤ W, each row framed [CLS] … [SEP] then padding.
        :param mask: ``[B, T]`` bool, True on real tokens; every row needs at least one.
        :param state: the memory left by earlier segments, or None for the first segment.
        :param write_memory: whether to compute the state after this segment (skip it for a
            text's last segment: nothing will read it).
        :returns: hidden states ``[B, T, d]`` and the new state (None if not written).
        """
        if input_ids.shape[1] > self.config.segment_len:
            raise ValueError(f"segment of {input_ids.shape[1]} tokens exceeds W={self.config.segment_len}")
        x = self.embeddings(input_ids)
        new_state: MemoryState = []
        for i, layer in enumerate(self.layers):
            x, layer_state = layer(x, mask, None if state is None else state[i], write_memory)
            new_state.append(layer_state)
        if not (write_memory and self.has_memory):
            return x, None
        return x, new_state
