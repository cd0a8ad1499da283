"""The kdtools registries.

``DISTILLERS`` is a child of mmengine's root ``MODELS`` registry, so a distiller is declared in a config
as ``dict(type='PKD', ...)`` and a user's own distiller joins with ``@DISTILLERS.register_module()`` or
through ``custom_imports``. The distillation detector and the timm backbone live in mmdet's ``MODELS`` so
that mmdet configs (``default_scope='mmdet'``) find them.
"""
from __future__ import annotations

import difflib
import inspect
from typing import TYPE_CHECKING, Any

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

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


def build_distiller(cfg: dict[str, Any]) -> BaseDistiller:
    """Build a distiller from its config, whatever the caller's default scope; unknown keys raise."""
    cfg = dict(cfg)
    name = cfg.get("type")
    DISTILLERS.import_from_location()
    if name not in DISTILLERS.module_dict:
        close = difflib.get_close_matches(str(name), DISTILLERS.module_dict, n=3, cutoff=0.4)
        raise KeyError(
            f"Unknown distiller type {name!r}. Registered: {sorted(DISTILLERS.module_dict)}"
            + (f"; did you mean {close}?" if close else ".")
            + " Your own distiller registers with @DISTILLERS.register_module() (see docs/custom_distiller.md)."
        )
    allowed = accepted_keys(DISTILLERS.module_dict[name])
    unknown = sorted(set(cfg) - allowed - {"type", "_scope_"})
    if unknown:
        hints = {k: difflib.get_close_matches(k, allowed, n=1) for k in unknown}
        hint = "; ".join(f"{k!r} -> did you mean {v[0]!r}?" for k, v in hints.items() if v)
        raise TypeError(
            f"{name} got unknown config keys {unknown}. {hint + '. ' if hint else ''}"
            f"Accepted keys: {sorted(allowed)}."
        )
    cfg.setdefault("_scope_", "kdtools")
    return DISTILLERS.build(cfg)
