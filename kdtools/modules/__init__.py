"""Pieces shared by several distillers: attention maps, GT masks, connectors and generation blocks."""
from kdtools.modules.attention import channel_attention, spatial_attention
from kdtools.modules.connectors import Connector, generation_block
from kdtools.modules.gt_masks import background_mask, box_indicator, foreground_mask

__all__ = [
    "Connector",
    "background_mask",
    "box_indicator",
    "channel_attention",
    "foreground_mask",
    "generation_block",
    "spatial_attention",
]
