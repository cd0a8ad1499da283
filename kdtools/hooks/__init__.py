"""mmengine hooks for distillation."""
from kdtools.hooks.rng_hook import RNGStateHook
from kdtools.hooks.schedule_hook import DistillScheduleHook
from kdtools.hooks.stage_hook import StageHook
from kdtools.hooks.teacher_check import TeacherCheckError, TeacherCheckHook

__all__ = ["DistillScheduleHook", "RNGStateHook", "StageHook", "TeacherCheckError", "TeacherCheckHook"]
