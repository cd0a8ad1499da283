"""mmengine hooks for distillation."""
from kdtools.hooks.rng_hook import RNGStateHook
from kdtools.hooks.schedule_hook import DistillScheduleHook
from kdtools.hooks.stage_hook import StageHook

__all__ = ["DistillScheduleHook", "RNGStateHook", "StageHook"]
