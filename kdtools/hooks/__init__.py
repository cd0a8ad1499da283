"""mmengine hooks for distillation."""
from kdtools.hooks.peer_exchange import PeerExchangeHook
from kdtools.hooks.rng_hook import RNGStateHook
from kdtools.hooks.schedule_hook import DistillScheduleHook
from kdtools.hooks.stage_hook import StageHook
from kdtools.hooks.teacher_check import TeacherCheckError, TeacherCheckHook

__all__ = [
    "DistillScheduleHook", "PeerExchangeHook", "RNGStateHook", "StageHook", "TeacherCheckError", "TeacherCheckHook",
]
