"""Apply each distiller's loss-weight schedule before every training iteration."""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DistillScheduleHook(Hook):
    """Sets ``loss_scale`` of every distiller with a ``schedule`` from the runner's iteration and epoch."""

    priority = "HIGH"

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        for distiller in model.distillers:
            if distiller.schedule is not None:
                distiller.loss_scale = distiller.schedule.scale(runner.iter, runner.epoch, runner.max_iters)
