"""Synthetic detection data sets."""

from .toy_coco import CLASSES, ensure_toy_coco, make_toy_coco

__all__ = ["CLASSES", "ensure_toy_coco", "make_toy_coco"]
