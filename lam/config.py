"""The model configuration: one dataclass, JSON round-trip, validated on creation."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

# the config fields of the pooling (lam/layers/pooling.py): the same weights pool differently under each
POOL_FIELDS = (
    "redundancy_tau",
    "redundancy_power",
    "token_idf",
    "idf_passage_tokens",
    "idf_min_text_tokens",
    "idf_df_offset",
)


@dataclass
class LAMConfig:
    """Shape and hyper-parameters of a LAM encoder.

    The first block mirrors the teacher (all-MiniLM-L6-v2 is a 6-layer, 384-dim BERT); the
    second block is LAM's own: how text is cut into segments and how the memory behaves.
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
    chunk_size: int = 32  # C of the chunked delta rule (32 ≈ head dim is fastest on CPU)
    memory: bool = True  # False: a plain windowed teacher (no state is read or written)
    fast_retention: float = 0.3  # initial fraction of the fast state kept across one segment
    slow_retention: float = 0.85  # same for the slow state
    # redundancy gate of the pooling (lam/layers/pooling.py); chosen on dev sets, 0 turns it off
    redundancy_tau: float = 0.15
    redundancy_power: float = 3.0
    # segment IDF of the pooling (lam/layers/pooling.py): weight tokens by how few segments hold their id;
    # chosen on QMSum val (dev); one-segment texts keep the plain mean, so short-text scores never change
    token_idf: bool = True
    # text tokens per passage for the IDF's df and S (0: each segment is a passage); 510, the teacher's 512
    # positions less [CLS]/[SEP], keeps the mean pool for any text the teacher sees whole
    idf_passage_tokens: int = 0
    # texts of at most this many text tokens keep the plain (gated) mean, the IDF weighs longer ones only; 510
    # with idf_passage_tokens 0 is the teacher's pool for what it sees whole and segment IDF beyond (session 20)
    idf_min_text_tokens: int = 0
    # c: an id's df counts as df + c·S and u is clipped at 0, so ids in nearly every passage drop out (0: off)
    idf_df_offset: float = 0.0
    name: str = "lam"  # free-form weights name, shown in repr and stats

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if not 3 <= self.segment_len <= self.max_position_embeddings:
            raise ValueError(
                f"segment_len must be in [3, max_position_embeddings={self.max_position_embeddings}], "
                f"got {self.segment_len}"
            )
        if self.idf_passage_tokens < 0:
            raise ValueError(f"idf_passage_tokens must be >= 0, got {self.idf_passage_tokens}")
        if self.idf_min_text_tokens < 0:
            raise ValueError(f"idf_min_text_tokens must be >= 0, got {self.idf_min_text_tokens}")
        if not 0.0 <= self.idf_df_offset < 1.0:
            raise ValueError(f"idf_df_offset must be in [0, 1), got {self.idf_df_offset}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.redundancy_tau < 0 or self.redundancy_power <= 0:
            raise ValueError(
                "redundancy_tau must be >= 0 and redundancy_power > 0, "
                f"got {self.redundancy_tau}, {self.redundancy_power}"
            )
        for name in ("fast_retention", "slow_retention"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")

    def pool_settings(self) -> dict[str, Any]:
        """The fields that decide how token states become one vector (records key on them with the weights)."""
        return {name: getattr(self, name) for name in POOL_FIELDS}

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def segment_body_len(self) -> int:
        """Text tokens per segment: W minus the [CLS] and [SEP] that frame every segment."""
        return self.segment_len - 2

    def initial_log_rate(self, retention: float) -> float:
        """Per-token decay rate r with exp(−r·W) = retention, i.e. r = −ln(retention) / W."""
        return -math.log(retention) / self.segment_len

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
