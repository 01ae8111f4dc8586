"""LAM: text embeddings that never run out of context.

>>> from lam import LAM
>>> LAM().encode(["a sentence", "a book …"]).shape
(2, 384)
"""

from lam.config import LAMConfig
from lam.encoder import LAM
from lam.errors import LAMError, LAMIndexError, WeightsError
from lam.retrieval import Index

__version__ = "0.1.0"
__all__ = ["LAM", "Index", "LAMConfig", "LAMError", "LAMIndexError", "WeightsError", "__version__"]
