"""LAM: text embeddings that never run out of context.

>>> from lam import LAM
>>> LAM().encode(["a sentence", "a book …"]).shape
(2, 384)

The names below are imported on first use, so ``import lam.cli`` (and ``lam --help``) does not
pay for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["LAM", "Index", "LAMConfig", "LAMError", "LAMIndexError", "WeightsError", "__version__"]

_WHERE = {
    "LAM": "lam.encoder",
    "Index": "lam.retrieval",
    "LAMConfig": "lam.config",
    "LAMError": "lam.errors",
    "LAMIndexError": "lam.errors",
    "WeightsError": "lam.errors",
}

if TYPE_CHECKING:
    from lam.config import LAMConfig
    from lam.encoder import LAM
    from lam.errors import LAMError, LAMIndexError, WeightsError
    from lam.retrieval import Index


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lam' has no attribute {name!r}")
