"""Synthetic detection data sets and the codistillation peers' data shards."""

from .peer_shards import PeerShardSampler, peer_shard
from .toy_coco import CLASSES, ensure_toy_coco, make_toy_coco

__all__ = ["CLASSES", "PeerShardSampler", "ensure_toy_coco", "make_toy_coco", "peer_shard"]
