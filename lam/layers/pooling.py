"""Mean pooling as running sums, so a document can be pooled one segment at a time."""

from __future__ import annotations

import torch


def masked_sum(hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_t m_t·h_t and Σ_t m_t over a segment: hidden ``[B, T, D]``, mask ``[B, T]``."""
    m = mask.to(hidden.dtype)
    return torch.einsum("btd,bt->bd", hidden, m), m.sum(dim=1)


def mean_pool(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """The document embedding e = Σ_t h_t / n over all of its tokens (every segment)."""
    return total / count.clamp(min=1).unsqueeze(-1)
