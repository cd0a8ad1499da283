"""Detector backbones registered in mmdet's ``MODELS`` registry."""

from .timm_backbone import TimmBackbone, timm_feature_info

__all__ = ["TimmBackbone", "timm_feature_info"]
