"""Where the evaluation data lives: ``../shared/data`` beside the repository, or $LAM_DATA."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path:
    env = os.environ.get("LAM_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def require(relative: str) -> Path:
    path = shared_data_dir() / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: set LAM_DATA to the folder holding the evaluation data")
    return path
