"""The model configuration: one dataclass, JSON round-trip, validated on creation."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

# lam/layers/pooling.py; the first is the default
POOLINGS = ("gated-segment-mean", "segment-mean", "weighted-segment-mean", "segment-idf", "mean")
MAX_SIZE = 1 << 20  # bound on every size field: a typo must not allocate terabytes
MAX_PARAMETERS = 1 << 31
MAX_CONFIG_BYTES = 1 << 20
_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
_TYPE_NAMES = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}


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
    memory: bool = False  # True: segments read and write the memory; False: a windowed teacher
    pooling: str = "gated-segment-mean"  # how token states become one vector (POOLINGS)
    name: str = "lam"  # free-form weights name, shown in repr and stats

    def __post_init__(self) -> None:
        self._check_types()
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if not 3 <= self.segment_len <= self.max_position_embeddings:
            raise ValueError(
                f"segment_len must be in [3, max_position_embeddings={self.max_position_embeddings}], "
                f"got {self.segment_len}"
            )
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")

    def _check_types(self) -> None:
        """Every field of its declared type (JSON's 384 and "384" are not the same), sizes positive
        and bounded, so a bad config.json is one clear message rather than an error deep in torch."""
        for f in fields(self):
            value, kind = getattr(self, f.name), _TYPES[f.type]
            ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
            if kind is float:
                ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not ok:
                raise ValueError(f"config field {f.name} must be {_TYPE_NAMES[kind]}, got {value!r:.60}")
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size", "type_vocab_size"):
            if not 1 <= getattr(self, name) <= MAX_SIZE:
                raise ValueError(f"config field {name} must be in [1, {MAX_SIZE}], got {getattr(self, name)}")
        if not 3 <= self.max_position_embeddings <= MAX_SIZE:
            raise ValueError(f"config field max_position_embeddings must be in [3, {MAX_SIZE}]")
        for name in ("cls_token_id", "sep_token_id", "pad_token_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(
                    f"config field {name} must be a token id in [0, {self.vocab_size}), got {getattr(self, name)}"
                )
        if not 0 < self.layer_norm_eps < 1:
            raise ValueError(f"config field layer_norm_eps must be in (0, 1), got {self.layer_norm_eps}")
        h, layers = self.hidden_size, self.num_layers
        parameters = (self.vocab_size + self.max_position_embeddings) * h + layers * (
            4 * h * h + 2 * h * self.intermediate_size
        )
        if parameters > MAX_PARAMETERS:
            raise ValueError(f"config describes {parameters:,} parameters; LAM models stay under {MAX_PARAMETERS:,}")

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
        """Read a config.json strictly: one JSON object, no repeated keys, no NaN/Infinity."""
        path = Path(path)
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"{path} must be a regular file of at most {MAX_CONFIG_BYTES} bytes")
        try:
            data = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_unique, parse_constant=_no_constant)
        except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ValueError(f"{path} is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object")
        return cls.from_dict(data)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"repeated keys {repeated}")
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")
