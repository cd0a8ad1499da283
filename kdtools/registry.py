"""The kdtools registries.

``DISTILLERS`` is a child of mmengine's root ``MODELS`` registry, so a distiller is declared in a config
as ``dict(type='PKD', ...)`` and a user's own distiller joins with ``@DISTILLERS.register_module()`` or
through ``custom_imports``. The distillation detector and the timm backbone live in mmdet's ``MODELS`` so
that mmdet configs (``default_scope='mmdet'``) find them.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

from kdtools.schedules import LossSchedule

if TYPE_CHECKING:
    from kdtools.distillers.base import BaseDistiller

DISTILLERS = Registry("distiller", parent=MMENGINE_MODELS, scope="kdtools", locations=["kdtools.distillers"])


def accepted_keys(cls: type) -> set[str]:
    """Keyword arguments a class accepts, following ``**kwargs`` up its base classes."""
    keys: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        keys |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return keys


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """``"did you mean 'x'?"`` (or ``'x', 'y' or 'z'``) for the choices close to ``word``; empty when none is."""
    close = [repr(c) for c in difflib.get_close_matches(word, list(choices), n=3, cutoff=cutoff)]
    if len(close) > 1:
        return f"did you mean {', '.join(close[:-1])} or {close[-1]}?"
    return f"did you mean {close[0]}?" if close else ""


def check_keys(owner: str, cfg: dict[str, Any], allowed: set[str]) -> None:
    """Raise if ``cfg`` has keys besides ``type`` and ``_scope_`` that ``owner`` does not accept, naming close
    matches."""
    unknown = sorted(set(cfg) - allowed - {"type", "_scope_"})
    if unknown:
        hints = "".join(f"{k!r}: {hint} " for k in unknown if (hint := did_you_mean(k, allowed)))
        raise TypeError(f"{owner} got unknown config keys {unknown}. {hints}Accepted keys: {sorted(allowed)}.")


def distiller_class(cfg: dict[str, Any]) -> type:
    """The registered class of a distiller config, its type and keys checked without building anything.

    Unknown types and keys raise, naming the close matches; so do unknown keys of its ``schedule``.
    """
    name = cfg.get("type")
    DISTILLERS.import_from_location()
    if name not in DISTILLERS.module_dict:
        hint = did_you_mean(str(name), DISTILLERS.module_dict, cutoff=0.4)
        raise KeyError(
            f"Unknown distiller type {name!r}{'; ' + hint if hint else '.'} Registered: "
            f"{sorted(DISTILLERS.module_dict)}. Your own distiller registers with @DISTILLERS.register_module() "
            "(see docs/custom_distiller.md)."
        )
    cls = DISTILLERS.module_dict[name]
    check_keys(name, cfg, accepted_keys(cls))
    LossSchedule.from_config(cfg.get("schedule"))
    return cls


def build_distiller(cfg: dict[str, Any]) -> BaseDistiller:
    """Build a distiller from its config, whatever the caller's default scope; unknown types and keys raise."""
    distiller_class(cfg)
    cfg = dict(cfg)
    cfg.setdefault("_scope_", "kdtools")
    return DISTILLERS.build(cfg)
