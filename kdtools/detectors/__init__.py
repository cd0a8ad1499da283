"""The distillation detector."""
from kdtools.detectors.distill_detector import DistillDetector

__all__ = ["DistillDetector"]
