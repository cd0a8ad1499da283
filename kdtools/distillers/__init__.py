"""Distillers, one method per file. Importing this package registers them all in ``DISTILLERS``."""
from kdtools.distillers.base import BaseDistiller, DistillBatch, LevelPair

__all__ = ["BaseDistiller", "DistillBatch", "LevelPair"]
