"""Teacher targets computed once and kept on disk (fp16), keyed by the exact token ids.

The teacher is frozen, so its embedding of a token sequence never changes: a rerun, a resumed
run or a second stage over the same windows reads the targets instead of recomputing them.
SQLite (one file, WAL) holds ``sha256(model fingerprint, ids) → fp16 vector``; the model
fingerprint keeps targets of different teachers apart.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


class TargetCache:
    def __init__(self, path: str | Path, fingerprint: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS target (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
        self.fingerprint = fingerprint.encode()
        self.hits = self.misses = 0

    def _key(self, ids: list[int]) -> bytes:
        return hashlib.sha256(self.fingerprint + np.asarray(ids, dtype=np.int32).tobytes()).digest()

    def get_or_compute(
        self, sequences: list[list[int]], compute: Callable[[list[list[int]]], torch.Tensor]
    ) -> torch.Tensor:
        """Targets ``[len(sequences), d]`` (fp32); ``compute`` runs on the missing ones only."""
        keys = [self._key(s) for s in sequences]
        found = {}
        for key in set(keys):
            row = self.db.execute("SELECT vector FROM target WHERE key = ?", (key,)).fetchone()
            if row is not None:
                found[key] = np.frombuffer(row[0], dtype=np.float16)
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            computed = compute([sequences[i] for i in missing]).detach().to(torch.float16).cpu().numpy()
            with self.db:
                for i, vector in zip(missing, computed):
                    found[keys[i]] = vector
                    self.db.execute("INSERT OR REPLACE INTO target VALUES (?, ?)", (keys[i], vector.tobytes()))
        return torch.from_numpy(np.stack([found[k] for k in keys]).astype(np.float32))

    def close(self) -> None:
        self.db.close()
