"""nn.Modules of the LAM encoder; the memory maths itself lives in :mod:`lam.memory`."""

from lam.layers.attention import SegmentMemoryAttention
from lam.layers.block import LAMBlock
from lam.layers.embeddings import Embeddings
from lam.layers.memory import AssociativeMemory
from lam.layers.pooling import (
    RunningPool,
    masked_sum,
    mean_pool,
    pool_reference,
    redundancy_weight,
    segment_idf_reference,
    segment_idf_weights,
)

__all__ = [
    "AssociativeMemory",
    "Embeddings",
    "LAMBlock",
    "RunningPool",
    "SegmentMemoryAttention",
    "masked_sum",
    "mean_pool",
    "pool_reference",
    "redundancy_weight",
    "segment_idf_reference",
    "segment_idf_weights",
]
