"""kdtools: knowledge distillation for object detection on mmdet 3 / mmengine.

Importing kdtools registers the distillation detector, the distillers, the hooks and the timm backbone,
and makes torch's weights-only checkpoint loading accept mmengine checkpoints.
"""
from kdtools.checkpoint import register_safe_globals

register_safe_globals()

from kdtools import backbones, detectors, distillers, hooks  # noqa: E402,F401  (registration)
from kdtools.registry import DISTILLERS, build_distiller  # noqa: E402

__version__ = "0.1.0"
__all__ = ["DISTILLERS", "build_distiller", "__version__"]
