"""Detector necks registered in mmdet's ``MODELS`` registry."""

from .efficientface import RFE, EfficientFaceNeck, OcclusionAttention

__all__ = ["RFE", "EfficientFaceNeck", "OcclusionAttention"]
