"""Recording module outputs ("taps") by module path, with forward hooks."""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial

from torch import Tensor, nn


def find_module(model: nn.Module, path: str, owner: str) -> nn.Module:
    """The submodule at ``path``, or a KeyError that lists the closest existing paths."""
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    close = difflib.get_close_matches(path, [name for name in modules if name], n=5, cutoff=0.5)
    hint = f" Closest module paths: {close}." if close else ""
    raise KeyError(f"Tap {path!r} is not a module of the {owner} ({type(model).__name__}).{hint}")


def as_levels(output: Tensor | Sequence[Tensor]) -> list[Tensor]:
    """A tap's output as a list of levels: a tensor is one level, a tuple/list one level per entry."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (tuple, list)) and all(isinstance(o, Tensor) for o in output):
        return list(output)
    raise TypeError(f"A tap must output a tensor or a tuple of tensors, got {type(output).__name__}.")


class TapRecorder:
    """Keeps the latest outputs of the given module paths of ``model`` while recording is on."""

    def __init__(self, model: nn.Module, paths: Iterable[str], owner: str) -> None:
        self.paths = list(dict.fromkeys(paths))
        self.outputs: dict[str, Tensor | tuple[Tensor, ...]] = {}
        self._active = False
        for path in self.paths:
            find_module(model, path, owner).register_forward_hook(partial(self._record, path))

    def _record(self, path: str, module: nn.Module, args: tuple, output: Tensor | tuple[Tensor, ...]) -> None:
        if self._active:
            self.outputs[path] = output

    @contextmanager
    def recording(self) -> Iterator[dict[str, Tensor | tuple[Tensor, ...]]]:
        self.outputs = {}
        self._active = True
        try:
            yield self.outputs
        finally:
            self._active = False

    def levels(self, paths: Sequence[str]) -> list[Tensor]:
        """The recorded levels of ``paths``, concatenated in order."""
        missing = [p for p in paths if p not in self.outputs]
        if missing:
            raise RuntimeError(f"Taps {missing} did not run in this forward pass.")
        return [level for path in paths for level in as_levels(self.outputs[path])]
