"""The model configuration: one dataclass, JSON round-trip, validated on creation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

POOLINGS = ("segment-idf", "mean")  # lam/layers/pooling.py: the first is the default


@dataclass
class LAMConfig:
    """Shape of a LAM encoder.

    The first block mirrors the teacher (all-MiniLM-L6-v2 is a 6-layer, 384-dim BERT); the
    second block is LAM's own: the segment length, whether the memory exists, the pooling.
    """

    # --- the teacher's BERT shape ---
    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    cls_token_id: int = 101
    sep_token_id: int = 102
    pad_token_id: int = 0

    # --- LAM ---
    segment_len: int = 256  # W: tokens per segment, [CLS] and [SEP] included; exact attention inside
    memory: bool = True  # False: a plain windowed teacher (no state is read or written)
    pooling: str = "segment-idf"  # how token states become one vector (POOLINGS)
    name: str = "lam"  # free-form weights name, shown in repr and stats

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if not 3 <= self.segment_len <= self.max_position_embeddings:
            raise ValueError(
                f"segment_len must be in [3, max_position_embeddings={self.max_position_embeddings}], "
                f"got {self.segment_len}"
            )
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def segment_body_len(self) -> int:
        """Text tokens per segment: W minus the [CLS] and [SEP] that frame every segment."""
        return self.segment_len - 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LAMConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LAMConfig fields: {unknown}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LAMConfig:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object")
        return cls.from_dict(data)
