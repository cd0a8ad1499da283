"""Stage-wise distillation: switch teacher and distiller settings at epoch boundaries, resume-safe."""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class StageHook(Hook):
    """Puts the DistillDetector into the stage its ``stages`` assign to the coming epoch.

    The stage is a function of the epoch, so a resumed run lands in the right stage with the right
    teacher; the model's ``stage`` buffer records it in every checkpoint.
    """

    priority = "VERY_HIGH"

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.set_stage(model.stage_at_epoch(runner.epoch))
