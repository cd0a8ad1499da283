"""Checkpoint loading that keeps torch's ``weights_only=True`` safety, and student export.

torch >= 2.6 unpickles checkpoints with ``weights_only=True``. mmengine 0.10.7 checkpoints hold a few
objects that the safe unpickler rejects by default (``HistoryBuffer`` in the message hub, numpy arrays,
scalars and dtypes in the logged values). :func:`register_safe_globals` allow-lists exactly those types,
so resuming works without ever turning the safety off.

mmengine also pickles ``HistoryBuffer``'s statistics methods by reference, through ``builtins.getattr``,
which kdtools does not allow-list globally. Checkpoints written under kdtools leave them out (they are
class-level and restored on load by ``HistoryBuffer.__setstate__``); checkpoints written by plain
mmengine are read by :func:`load_checkpoint_file` with ``getattr`` allowed for that one call.
"""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend

STUDENT_PREFIX = "student."


def _numpy_globals() -> list[Any]:
    types: list[Any] = [np.ndarray, np.dtype]
    core = np._core if hasattr(np, "_core") else np.core
    types += [core.multiarray._reconstruct, core.multiarray.scalar]
    types += [type(np.dtype(scalar)) for scalar in set(np.sctypeDict.values())]
    return list(dict.fromkeys(types))


def _history_buffer_state(buffer: Any) -> dict[str, Any]:
    """``HistoryBuffer`` state without its statistics methods (class-level, restored by ``__setstate__``)."""
    return {key: value for key, value in buffer.__dict__.items() if key != "statistics_methods"}


def register_safe_globals() -> None:
    """Allow the types found in mmengine checkpoints through torch's weights-only unpickler, and read local
    checkpoints in mmengine (``load_from``, ``resume``) with :func:`load_checkpoint_file`."""
    from mmengine.logging import HistoryBuffer
    from mmengine.runner import CheckpointLoader

    HistoryBuffer.__getstate__ = _history_buffer_state
    torch.serialization.add_safe_globals([HistoryBuffer, *_numpy_globals()])
    CheckpointLoader.register_scheme(prefixes="", force=True)(
        lambda filename, map_location: load_checkpoint_file(osp.expanduser(filename), map_location))


def load_checkpoint_file(path: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (weights only, plain-mmengine files too), with a clear error when missing."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"Checkpoint file {path!r} does not exist.")
    with torch.serialization.safe_globals([getattr]):
        return torch.load(path, map_location=map_location, weights_only=True)


def state_dict_of(checkpoint: dict[str, Any]) -> OrderedDict:
    """The model weights of a checkpoint (mmengine's ``state_dict`` key or a raw state dict)."""
    state = checkpoint.get("state_dict", checkpoint.get("model", checkpoint))
    return OrderedDict((key.removeprefix("module."), value) for key, value in state.items())


def student_state_dict(checkpoint: dict[str, Any]) -> OrderedDict:
    """The student's weights with plain mmdet keys: distiller modules and anything else dropped."""
    state = state_dict_of(checkpoint)
    student = OrderedDict(
        (key[len(STUDENT_PREFIX) :], value) for key, value in state.items() if key.startswith(STUDENT_PREFIX)
    )
    if not student:
        raise KeyError("This checkpoint has no 'student.*' weights: is it a kdtools distillation checkpoint?")
    return student


def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temporary file in the same folder, then rename: a killed write leaves no half file."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` that never leaves a partial file behind."""
    atomic_write(path, lambda f: torch.save(obj, f))


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic writes: checkpoints and ``last_checkpoint`` are replaced
    whole or not at all, so a run killed while saving still resumes from its previous checkpoint."""

    def put(self, obj: bytes, filepath: str | Path) -> None:
        atomic_write(str(filepath), lambda f: f.write(obj))

    def put_text(self, obj: str, filepath: str | Path, encoding: str = "utf-8") -> None:
        self.put(obj.encode(encoding), filepath)


def use_atomic_local_writes() -> None:
    """Make mmengine write local files (checkpoints included) atomically."""
    register_backend("local", AtomicLocalBackend, force=True, prefixes="")


def load_student_weights(model: torch.nn.Module, path: str) -> None:
    """Load a distillation checkpoint's student (or a plain mmdet checkpoint) into a plain detector, strictly."""
    checkpoint = load_checkpoint_file(path)
    state = state_dict_of(checkpoint)
    if any(key.startswith(STUDENT_PREFIX) for key in state):
        state = student_state_dict(checkpoint)
    model.load_state_dict(state, strict=True)


def export_student(checkpoint_path: str, out_path: str) -> dict[str, Any]:
    """Write the student of a distillation checkpoint as a plain mmdet checkpoint (weights-only loadable)."""
    checkpoint = load_checkpoint_file(checkpoint_path)
    meta = {k: v for k, v in checkpoint.get("meta", {}).items() if k in ("epoch", "iter", "dataset_meta")}
    exported = {"state_dict": student_state_dict(checkpoint), "meta": {**meta, "exported_from": checkpoint_path}}
    atomic_save(exported, out_path)
    return exported
