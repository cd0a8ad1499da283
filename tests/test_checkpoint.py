"""Weights-only checkpoint loading of mmengine checkpoints, without turning the safety off."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import kdtools  # noqa: F401


def test_plain_mmengine_checkpoints_load_through_mmengine_with_weights_only(tmp_path):
    path = tmp_path / "plain.pth"
    buffer = HistoryBuffer()
    buffer.update(np.float64(1.5))
    # plain mmengine pickles HistoryBuffer's statistics methods by reference, through builtins.getattr
    meta = {"log": buffer, "statistics": {"min": HistoryBuffer.min}, "scalar": np.float32(2.0)}
    torch.save({"state_dict": {"w": torch.ones(2)}, "meta": meta}, path)
    with pytest.raises(pickle.UnpicklingError, match="getattr"):
        torch.load(path, weights_only=True)
    checkpoint = _load_checkpoint(str(path), map_location="cpu")
    assert torch.equal(checkpoint["state_dict"]["w"], torch.ones(2))
    assert checkpoint["meta"]["log"].current() == 1.5


def test_checkpoints_written_under_kdtools_need_no_getattr(tmp_path):
    path = tmp_path / "ours.pth"
    buffer = HistoryBuffer()
    buffer.update(3.0)
    torch.save({"message_hub": {"log_scalars": {"loss": buffer}}}, path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []  # all allow-listed, no getattr
    loaded = torch.load(path, weights_only=True)
    assert loaded["message_hub"]["log_scalars"]["loss"].current() == 3.0
