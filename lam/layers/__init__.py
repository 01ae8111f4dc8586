"""nn.Modules of the LAM encoder; the memory maths itself lives in :mod:`lam.memory`."""

from lam.layers.attention import SegmentMemoryAttention
from lam.layers.block import LAMBlock
from lam.layers.embeddings import Embeddings
from lam.layers.memory import AssociativeMemory
from lam.layers.pooling import masked_sum, mean_pool

__all__ = ["AssociativeMemory", "Embeddings", "LAMBlock", "SegmentMemoryAttention", "masked_sum", "mean_pool"]
