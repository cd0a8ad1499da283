"""timm models as mmdet detector backbones.

``TimmBackbone`` wraps ``timm.create_model(..., features_only=True)`` so that any timm family (ResNet, ConvNeXt,
EfficientNet/MobileNet, Swin, ...) can be used as the ``backbone`` of an mmdet detector. It reports the channels and
strides of its outputs, returns NCHW feature maps whatever layout the timm model produces, supports freezing the
stem and the first feature stages, keeping BatchNorm layers in eval mode, and loading a local checkpoint.

Stage indices are timm feature indices, the same numbers used by ``out_indices``: ``frozen_stages=k`` freezes every
module that computes features ``0 .. k-1`` (the stem included); ``frozen_stages=0`` freezes the stem only. For timm's
ResNet feature 0 is the stem output and feature 1 is ``layer1``, so ``frozen_stages=2`` matches mmdet's
``ResNet(frozen_stages=1)``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

import timm
import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from timm.layers import Format
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

# Prefixes and renamings timm's feature wrappers apply to the module names of the wrapped model: FeatureGetterNet
# keeps it under ``model``, FeatureHookNet under ``body``, FeatureGraphNet under ``graph_module``, and
# ``flatten_sequential`` turns ``stages.0`` into ``stages_0``.
_WRAPPER_PREFIXES = ("", "model.", "body.", "graph_module.")
_STATE_DICT_WRAPPERS = ("state_dict", "model")
_MAX_KEYS_SHOWN = 20


def _check_request(model_name: str, out_indices: Sequence[int]) -> None:
    """Reject an empty ``out_indices`` and unknown model names, suggesting close timm model names."""
    if not out_indices:
        raise ValueError("out_indices must not be empty.")
    if timm.is_model(model_name):
        return
    arch = model_name.split(".", 1)[0]
    close = difflib.get_close_matches(arch, timm.list_models(), n=8, cutoff=0.6)
    hint = f"close matches: {', '.join(close)}" if close else "see timm.list_models() for the available names"
    raise ValueError(f"Unknown timm model {model_name!r}; {hint}.")


def _build_on_meta(model_name: str, **kwargs: Any) -> nn.Module:
    """Build a timm model without allocating weights, falling back to CPU when a family cannot be built on meta."""
    try:
        with torch.device("meta"):
            return timm.create_model(model_name, pretrained=False, **kwargs)
    except (RuntimeError, NotImplementedError):
        return timm.create_model(model_name, pretrained=False, **kwargs)


def _normalize_out_indices(out_indices: Sequence[int], num_features: int, model_name: str) -> tuple[int, ...]:
    """Resolve negative indices and check that ``out_indices`` are strictly increasing timm feature indices."""
    bad = [i for i in out_indices if not -num_features <= i < num_features]
    if bad:
        raise ValueError(
            f"out_indices {bad} out of range for {model_name!r}: it has {num_features} feature levels, "
            f"valid indices are 0..{num_features - 1} (or -{num_features}..-1)."
        )
    resolved = tuple(i % num_features for i in out_indices)
    if any(a >= b for a, b in pairwise(resolved)):
        raise ValueError(f"out_indices must be strictly increasing, got {tuple(out_indices)}.")
    return resolved


def _resolve_indices(model_name: str, out_indices: Sequence[int], model_kwargs: dict[str, Any]) -> list[dict]:
    """Validate name and indices; return timm's feature info dicts (channels, reduction, module) for ``out_indices``."""
    _check_request(model_name, out_indices)
    info = _build_on_meta(model_name, features_only=True, **model_kwargs).feature_info
    indices = _normalize_out_indices(out_indices, len(info), model_name)
    return [dict(info[i], index=i) for i in indices]


def timm_feature_info(
    model_name: str, out_indices: Sequence[int] = (1, 2, 3), **model_kwargs: Any
) -> tuple[list[int], list[int]]:
    """Channels and strides of the features ``TimmBackbone(model_name, out_indices)`` returns, without weights.

    Useful when writing configs, e.g. ``channels, _ = timm_feature_info('convnext_atto', (0, 1, 2, 3))`` for the
    FPN ``in_channels``.
    """
    infos = _resolve_indices(model_name, out_indices, model_kwargs)
    return [fi["num_chs"] for fi in infos], [fi["reduction"] for fi in infos]


def _create_feature_model(
    model_name: str, out_indices: Sequence[int], model_kwargs: dict[str, Any]
) -> tuple[nn.Module, tuple[int, ...]]:
    """Build the timm feature model; return it with its out_indices resolved to non-negative feature indices."""
    _check_request(model_name, out_indices)
    try:
        model = timm.create_model(
            model_name, features_only=True, out_indices=tuple(out_indices), pretrained=False, **model_kwargs
        )
    except (IndexError, AssertionError):
        _resolve_indices(model_name, out_indices, model_kwargs)  # raises a ValueError naming the valid range
        raise
    return model, _normalize_out_indices(out_indices, len(model.feature_info), model_name)


def _wrapped_name(name: str, available: set[str]) -> str | None:
    """Name of ``name`` (a module or key of the plain timm model) inside a timm feature wrapper, if present."""
    flattened = name.replace(".", "_", 1)
    for prefix in _WRAPPER_PREFIXES:
        for candidate in (prefix + name, prefix + flattened):
            if candidate in available:
                return candidate
    return None


def _stage_boundaries(model: nn.Module, num_stages: int, names: set[str]) -> dict[str, tuple[int, bool]]:
    """Map the wrapper module producing each of the first ``num_stages`` features to (index, module is inclusive).

    Feature 0 is always located: it marks where the stem ends. A feature read by a forward-pre hook is the input of
    its module, so that module belongs to the next stage.
    """
    boundaries = {}
    for index in range(max(num_stages, 1)):
        info = model.feature_info[index]
        path = _wrapped_name(info["module"], names)
        if path is None:
            raise ValueError(
                f"Cannot freeze stage {index}: timm feature module {info['module']!r} is not a submodule of "
                f"{type(model).__name__}, so frozen_stages is not supported for this model."
            )
        boundaries[path] = (index, info.get("hook_type", "forward") != "forward_pre")
    return boundaries


def _module_stages(model: nn.Module, num_stages: int) -> dict[str, int]:
    """Assign each submodule of a timm feature model to the feature stage that computes it.

    Modules are walked in registration order (the order timm's feature wrappers already rely on). Everything before
    the first feature module is the stem (-1); a feature module's subtree belongs to its index; modules between two
    feature modules belong to the later one. Modules after feature ``num_stages - 1`` get ``num_stages``.
    """
    names = [name for name, _ in model.named_modules() if name]
    boundaries = _stage_boundaries(model, num_stages, set(names))
    stages: dict[str, int] = {}
    stage, open_subtree = -1, None
    for name in names:
        if open_subtree is not None and not name.startswith(open_subtree + "."):
            stage, open_subtree = stage + 1, None
        if name in boundaries:
            index, inclusive = boundaries[name]
            stage = index if inclusive else index + 1
            open_subtree = name if inclusive else None
        stages[name] = stage
    return stages


def _fully_frozen(names: Iterable[str], frozen: set[str]) -> list[str]:
    """Frozen modules whose whole subtree is frozen (safe to switch to eval mode as a unit)."""
    names = list(names)
    return [
        name
        for name in names
        if name in frozen and all(other in frozen for other in names if other.startswith(name + "."))
    ]


def _read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Load a checkpoint file, unwrap ``state_dict``/``model`` containers and strip ``module.`` prefixes."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in _STATE_DICT_WRAPPERS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise TypeError(f"Checkpoint {path!r} does not contain a state dict.")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _key_list(keys: list[str]) -> str:
    """Keys for an error message, shortened when there are many."""
    extra = len(keys) - _MAX_KEYS_SHOWN
    return f"{keys[:_MAX_KEYS_SHOWN]} (+{extra} more)" if extra > 0 else str(keys)


def _head_keys(model_name: str, model_kwargs: dict[str, Any], wrapper_keys: set[str]) -> set[str]:
    """Keys of the full timm model that its feature wrapper drops (classifier head, stages after the last output)."""
    full_keys = _build_on_meta(model_name, **model_kwargs).state_dict().keys()
    return {k for k in full_keys if _wrapped_name(k, wrapper_keys) is None}


@MODELS.register_module()
class TimmBackbone(BaseModule):
    """A timm model used through ``features_only=True`` as an mmdet backbone.

    Args:
        model_name: timm model name, e.g. ``'resnet18'``, ``'convnext_atto'``, ``'mobilenetv3_small_100'``.
        out_indices: timm feature indices to return (see ``timm_feature_info``), strictly increasing.
        frozen_stages: freeze the stem and features ``0 .. frozen_stages-1``: their parameters stop requiring grad
            and their modules stay in eval mode. -1 freezes nothing.
        norm_eval: keep every BatchNorm layer in eval mode while training (running stats stay fixed).
        checkpoint: local weights file loaded into the timm model. Either a raw state dict or one under
            ``'state_dict'``/``'model'``; keys may use the plain timm model's names or the feature wrapper's,
            with or without a ``module.`` prefix. Missing keys raise, as do unexpected keys other than weights of
            the parts of the full timm model that the feature model drops (classifier head, unused last stages).
        model_kwargs: extra keyword arguments for ``timm.create_model`` (e.g. ``drop_path_rate``).
        init_cfg: mmengine initialisation config.
    """

    def __init__(
        self,
        model_name: str,
        out_indices: Sequence[int] = (1, 2, 3),
        frozen_stages: int = -1,
        norm_eval: bool = False,
        checkpoint: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        model_kwargs = dict(model_kwargs or {})
        self.model, indices = _create_feature_model(model_name, out_indices, model_kwargs)
        if not -1 <= frozen_stages <= indices[-1] + 1:
            raise ValueError(f"frozen_stages must be in -1..{indices[-1] + 1} for out_indices {indices}.")
        self.model_name = model_name
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.model_kwargs = model_kwargs
        self._nhwc = Format(getattr(self.model, "output_fmt", Format.NCHW)) == Format.NHWC
        if checkpoint is not None:
            self._load_checkpoint(checkpoint)
        self._frozen_eval_modules = self._freeze_stages()

    @property
    def out_channels(self) -> list[int]:
        """Channels of each returned feature map."""
        return list(self.model.feature_info.channels())

    @property
    def strides(self) -> list[int]:
        """Stride (input size / feature size) of each returned feature map."""
        return list(self.model.feature_info.reduction())

    def _load_checkpoint(self, path: str) -> None:
        """Load local weights into the timm model (see the ``checkpoint`` argument)."""
        wrapper_keys = set(self.model.state_dict())
        state = {}
        for key, value in _read_state_dict(path).items():
            state[_wrapped_name(key, wrapper_keys) or key] = value
        result = self.model.load_state_dict(state, strict=False)
        head = _head_keys(self.model_name, self.model_kwargs, wrapper_keys) if result.unexpected_keys else set()
        unexpected = [k for k in result.unexpected_keys if k not in head]
        if result.missing_keys or unexpected:
            raise ValueError(
                f"Checkpoint {path!r} does not match timm model {self.model_name!r}: "
                f"missing keys {_key_list(result.missing_keys)}, "
                f"unexpected keys {_key_list(unexpected)} (head keys are ignored)."
            )

    def _freeze_stages(self) -> list[str]:
        """Stop gradients of the frozen stages; return the names of the modules to keep in eval mode."""
        if self.frozen_stages < 0:
            return []
        stages = _module_stages(self.model, self.frozen_stages)
        frozen = {name for name, stage in stages.items() if stage < self.frozen_stages}
        for name in frozen:
            for param in self.model.get_submodule(name).parameters(recurse=False):
                param.requires_grad_(False)
        eval_modules = _fully_frozen(stages.keys(), frozen)
        for name in eval_modules:
            self.model.get_submodule(name).eval()
        return eval_modules

    def train(self, mode: bool = True) -> TimmBackbone:
        """Switch to train mode, keeping frozen stages (and BatchNorm layers with ``norm_eval``) in eval mode."""
        super().train(mode)
        if mode:
            for name in self._frozen_eval_modules:
                self.model.get_submodule(name).eval()
            if self.norm_eval:
                for module in self.modules():
                    if isinstance(module, _BatchNorm):
                        module.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Return the selected feature maps, NCHW."""
        features = self.model(x)
        if self._nhwc:
            features = [f.permute(0, 3, 1, 2).contiguous() for f in features]
        return tuple(features)
