"""kdtools: knowledge distillation for object detection on mmdet 3 / mmengine.

Importing kdtools registers the distillation detector, the distillers, the hooks, the codistillation sampler,
the timm backbone and the EfficientFace neck,
makes torch's weights-only checkpoint loading accept mmengine checkpoints, and makes checkpoint writes atomic.
"""
from kdtools.checkpoint import register_safe_globals, use_atomic_local_writes

register_safe_globals()
use_atomic_local_writes()

from kdtools import backbones, datasets, detectors, distillers, hooks, necks  # noqa: E402,F401  (registration)
from kdtools.registry import DISTILLERS, build_distiller  # noqa: E402

__version__ = "0.1.0"
__all__ = ["DISTILLERS", "build_distiller", "__version__"]
