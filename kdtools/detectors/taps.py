"""Records of a forward pass: what tapped modules produced, call by call.

A tap is a module path, e.g. ``'neck'`` or ``'bbox_head.gfl_cls'``; ``'<path>:in'`` records (a copy of)
the module's first input instead of its output (``'bbox_head.cls_convs.2.activate:in'`` is a head conv's
feature before its activation); ``'<path>:call'`` records the whole call, a :class:`Call` of its positional
and keyword arguments and its output (a DETR's decoder inputs, its head's hidden states and references).
Every call is kept in call order: a head layer shared across levels runs once per level and gives one record
per level; a neck returning a tuple gives one record per entry.

Records are tensors of any rank: N x C x H x W maps for the feature distillers, N x L x C tokens (a
transformer's memory or queries) and dense-head outputs (a tuple of per-level lists) for the others.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from torch import Tensor, nn

INPUT_SUFFIX = ":in"
CALL_SUFFIX = ":call"


@dataclass(frozen=True)
class Call:
    """One recorded call of a module: its positional and keyword arguments and its output."""

    args: tuple
    kwargs: dict
    output: Any


def find_module(model: nn.Module, path: str, owner: str, origin: str = "") -> nn.Module:
    """The submodule at ``path``, or a KeyError that lists the closest existing paths and ``origin`` (who asked)."""
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    close = difflib.get_close_matches(path, [name for name in modules if name], n=5, cutoff=0.5)
    hint = f" Closest module paths: {close}." if close else ""
    raise KeyError(f"Tap {path!r} is not a module of the {owner} ({type(model).__name__}).{hint} {origin}".rstrip())


def module_path(tap: str) -> str:
    """The module path of a tap (``'<path>:in'`` and ``'<path>:call'`` name the same module as ``'<path>'``)."""
    return tap.removesuffix(INPUT_SUFFIX).removesuffix(CALL_SUFFIX)


def as_levels(output: Tensor | Sequence[Tensor], tap: str = "") -> list[Tensor]:
    """A recorded call as a list of levels: a tensor is one level, a tuple/list one level per entry."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (tuple, list)) and all(isinstance(o, Tensor) for o in output):
        return list(output)
    raise TypeError(
        f"Tap {tap!r} records a {type(output).__name__}, not a tensor or a tuple of tensors (a dense head records "
        "per-level lists). Tap a layer inside it, or use a head distiller for dense-head outputs."
    )


def map_tensors(fn: Callable[[Tensor], Tensor], value: Any) -> Any:
    """``value`` with ``fn`` applied to every tensor in it (nested tuples, lists, dicts and calls kept; modules
    passed as arguments are left alone)."""
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return type(value)(map_tensors(fn, v) for v in value)
    if isinstance(value, dict):
        return {key: map_tensors(fn, v) for key, v in value.items()}
    if isinstance(value, Call):
        return Call(map_tensors(fn, value.args), map_tensors(fn, value.kwargs), map_tensors(fn, value.output))
    return value


def describe_tensor(tensor: Tensor) -> str:
    """'64x16x16' for a map, '900x256 tokens' for N x L x C (batch dimension left out)."""
    shape = "x".join(str(int(s)) for s in tensor.shape[1:])
    return f"{shape} tokens" if tensor.dim() == 3 else shape


@dataclass(frozen=True)
class HeadOutputs:
    """The per-level outputs of a dense head (N x K x H x W each) and the head module that produced them.

    ``bbox_preds`` are what the head regresses: deltas or distances (4 channels per anchor) or, for
    GFL-style heads, logits of a discrete distribution over ``reg_max + 1`` bins per side.
    """

    cls_scores: list[Tensor]
    bbox_preds: list[Tensor]
    others: tuple[list[Tensor], ...]
    head: nn.Module

    @classmethod
    def from_output(cls, output: Any, head: nn.Module, tap: str) -> HeadOutputs:
        lists = isinstance(output, tuple) and len(output) >= 2 and all(isinstance(o, (list, tuple)) for o in output)
        if not lists or not all(isinstance(t, Tensor) and t.dim() == 4 for o in output[:2] for t in o):
            raise TypeError(
                f"Tap {tap!r} ({type(head).__name__}) does not output per-level dense predictions "
                "(cls_scores, bbox_preds, ...) of N x K x H x W maps; a head distiller needs a dense head."
            )
        return cls(list(output[0]), list(output[1]), tuple(list(o) for o in output[2:]), head)


class Records:
    """What the taps recorded in one forward pass: per tap, one entry per call in call order."""

    def __init__(self, calls: dict[str, list[Any]], modules: dict[str, nn.Module]) -> None:
        self.calls = calls
        self.modules = modules

    def _calls(self, tap: str) -> list[Any]:
        if tap not in self.calls or not self.calls[tap]:
            raise RuntimeError(f"Tap {tap!r} did not run in this forward pass.")
        return self.calls[tap]

    def levels(self, taps: Sequence[str]) -> list[Tensor]:
        """The recorded levels of ``taps``: every call of each tap in order, tuples unpacked."""
        return [level for tap in taps for call in self._calls(tap) for level in as_levels(call, tap)]

    def call(self, tap: str) -> Call:
        """The last recorded call of a ``'<path>:call'`` tap."""
        return self._calls(tap)[-1]

    def head(self, tap: str) -> HeadOutputs:
        """The outputs of the dense head at ``tap`` (its last call)."""
        return HeadOutputs.from_output(self._calls(tap)[-1], self.modules[tap], tap)

    def describe(self, tap: str) -> str:
        """'#0: 64x32x32, #1: 64x16x16' or '#0: 900x256 tokens' for the levels of ``tap``."""
        return ", ".join(f"#{i}: {describe_tensor(t)}" for i, t in enumerate(self.levels([tap])))

    def cloned(self) -> Records:
        """A copy whose tensors are ordinary ones (records made under inference mode cannot enter autograd)."""
        return Records({tap: map_tensors(Tensor.clone, calls) for tap, calls in self.calls.items()}, self.modules)


class TapRecorder:
    """Records every call of the tapped modules of ``model`` while recording is on.

    ``taps`` may map each tap to who asked for it, which a missing module's error then names.
    """

    def __init__(self, model: nn.Module, taps: Iterable[str] | Mapping[str, str], owner: str) -> None:
        origins = taps if isinstance(taps, Mapping) else {}
        self.paths = list(dict.fromkeys(taps))
        self.modules = {tap: find_module(model, module_path(tap), owner, origins.get(tap, "")) for tap in self.paths}
        self._calls: dict[str, list[Any]] = {}
        self._active = False
        for tap, module in self.modules.items():
            if tap.endswith(INPUT_SUFFIX):
                module.register_forward_pre_hook(partial(self._record_input, tap))
            elif tap.endswith(CALL_SUFFIX):
                module.register_forward_hook(partial(self._record_call, tap), with_kwargs=True)
            else:
                module.register_forward_hook(partial(self._record_output, tap))

    def _record_input(self, tap: str, module: nn.Module, args: tuple) -> None:
        if self._active:  # a copy: an in-place activation would overwrite its input
            self._calls[tap].append(map_tensors(Tensor.clone, args[0]))

    def _record_output(self, tap: str, module: nn.Module, args: tuple, output: Any) -> None:
        if self._active:
            self._calls[tap].append(output)

    def _record_call(self, tap: str, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if self._active:
            self._calls[tap].append(Call(tuple(args), dict(kwargs), output))

    @contextmanager
    def recording(self) -> Iterator[Records]:
        """Record the calls made inside the block; the yielded records fill as the model runs."""
        self._calls = {tap: [] for tap in self.paths}
        self._active = True
        try:
            yield Records(self._calls, self.modules)
        finally:
            self._active = False


def run_to_depth(model: nn.Module, inputs: Tensor, data_samples: list, taps: Sequence[str]) -> None:
    """Run ``model`` only as far as ``taps`` need: backbone, backbone + neck, or the whole network.

    A single-stage detector's or a DETR's head is called as a module (their ``_forward`` calls
    ``bbox_head.forward``, which hooks do not see), so that a tap on the head itself records its call.
    """
    from mmdet.models.detectors import DetectionTransformer, SingleStageDetector

    tops = {module_path(tap).split(".")[0] for tap in taps}
    if tops <= {"backbone"}:
        model.backbone(inputs)
    elif tops <= {"backbone", "neck"}:
        model.extract_feat(inputs)
    elif isinstance(model, SingleStageDetector):
        model.bbox_head(model.extract_feat(inputs))
    elif isinstance(model, DetectionTransformer):
        head_inputs = model.forward_transformer(model.extract_feat(inputs), data_samples)  # + the losses' in training
        model.bbox_head(head_inputs["hidden_states"], head_inputs["references"])
    else:
        model._forward(inputs, data_samples)
