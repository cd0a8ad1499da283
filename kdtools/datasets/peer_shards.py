"""Disjoint data shards for codistillation: each peer trains on its own fixed part of the training set."""
from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import torch
from mmengine.dataset import DefaultSampler
from mmengine.registry import DATA_SAMPLERS


def peer_shard(size: int, peer: int, peers: int, seed: int = 0) -> list[int]:
    """Peer ``peer``'s indices of a data set of ``size``: every ``peers``-th of one fixed random permutation
    (``seed``), the shorter shards completed with their own first indices so that every peer has
    ``ceil(size / peers)`` (equal iterations per epoch; the shards stay disjoint)."""
    if not 0 <= peer < peers:
        raise ValueError(f"peer {peer} is not one of {peers} peers.")
    if size < peers:
        raise ValueError(f"A training set of {size} images cannot be split into {peers} disjoint shards.")
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist()
    shard = order[peer::peers]
    length = math.ceil(size / peers)
    return (shard * 2)[:length]


@DATA_SAMPLERS.register_module()
class PeerShardSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` over one peer's shard (:func:`peer_shard`) instead of the whole data set:
    shuffled per epoch with ``seed`` and split over the peer's ranks as the default sampler splits the data.

    Args:
        peer: this process's peer; peers: how many there are.
        partition_seed: the seed of the partition, the same for every peer (so that the shards are disjoint).
        shuffle, seed, round_up: as ``DefaultSampler``'s, within the shard.
    """

    def __init__(self, dataset: Sized, peer: int, peers: int, partition_seed: int = 0, shuffle: bool = True,
                 seed: int | None = None, round_up: bool = True) -> None:
        self.shard = peer_shard(len(dataset), peer, peers, partition_seed)
        super().__init__(self.shard, shuffle=shuffle, seed=seed, round_up=round_up)  # samples positions in it

    def __iter__(self) -> Iterator[int]:
        return (self.shard[i] for i in super().__iter__())
