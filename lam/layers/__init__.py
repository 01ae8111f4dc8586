"""nn.Modules of the LAM encoder and its pooling; the memory maths itself lives in :mod:`lam.memory`."""

from lam.layers.attention import SegmentMemoryAttention
from lam.layers.block import LAMBlock
from lam.layers.embeddings import Embeddings
from lam.layers.memory import AssociativeMemory
from lam.layers.pooling import RunningPool, masked_sum, pool_reference, redundancy_weight

__all__ = [
    "AssociativeMemory",
    "Embeddings",
    "LAMBlock",
    "RunningPool",
    "SegmentMemoryAttention",
    "masked_sum",
    "pool_reference",
    "redundancy_weight",
]
