"""Random generator states in checkpoints, for bit-exact resume."""
from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_torch_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    set_torch_rng_state(state)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the python, numpy and torch generator states with every checkpoint and restores them on resume.

    Random masks (MGD, DMKD's 'sample' rule), dropout and augmentation then draw what an uninterrupted run
    draws. Epoch-based runs resume at an epoch start: every state is restored at load time. An
    iteration-based loop re-reads the batches it has already seen, which replays the data-side (numpy)
    draws by itself; there only torch's state is restored, just before the first resumed step.
    """

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self._pending: dict | None = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint["rng_state"] = rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get("rng_state")
        if state is not None and isinstance(runner.train_loop, IterBasedTrainLoop):
            self._pending = state
        elif state is not None:
            set_rng_state(state)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is not None:
            set_torch_rng_state(self._pending)
            self._pending = None
