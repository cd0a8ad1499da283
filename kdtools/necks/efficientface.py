"""EfficientFace's feature-enhancement neck: SBiFPN fusion, receptive field enhancement (RFE) and attention (AM).

EfficientFace (Wang et al., arXiv 2302.11816) adds three modules to an EfficientNet backbone: a symmetrically
bi-directional FPN (SBiFPN) that fuses low- and high-level features in both directions with a short path from low
levels to high ones, a Receptive Field Enhancement module (RFE) for faces of unbalanced aspect ratios, and an
attention module (AM) for occluded faces. Only the abstract is public; what follows is kdtools' reading, and every
choice the abstract leaves open is a constructor option (named as such below) or a fixed choice named here.

Notation: ``x_0 .. x_{L-1}`` are the neck's levels from the finest (P3) to the coarsest (P7), all with ``C`` channels;
``up`` is nearest-neighbour upsampling to the finer level's size, ``down`` is 3x3 max pooling with stride 2 (as in
BiFPN; a fixed choice), both followed, when the sizes still differ, by resizing to the exact target size.

Levels
    ``x_i = lateral_i(c_{start_level + i})``: a 1x1 conv (+ norm, no activation) per used backbone level. Levels beyond
    the backbone's, up to ``num_outs``, come from stride-2 3x3 convs (+ norm + activation), the first on the last used
    backbone feature, each further one on the previous extra level (mmdet FPN's ``'on_input'``). All ``num_outs``
    levels then take part in the fusion (a fixed choice: BiFPN fuses P3-P7 alike).

Fusion (``fusion``), repeated ``num_repeats`` times, each repeat taking the previous repeat's outputs
    A fusion node sums its inputs and applies a 3x3 conv + norm + activation (``depthwise=True``: a depthwise-separable
    conv instead). In the SBiFPN nodes the sum is BiFPN's fast normalised fusion,
    ``sum_j w_j f_j`` with ``w_j = relu(a_j) / (eps + sum_k relu(a_k))``: learned, non-negative weights summing to
    (nearly) one, ``a_j`` initialised to 1.

    ``'fpn'`` (a plain FPN, for the ablations): ``p_{L-1} = x_{L-1}``, ``p_i = x_i + up(p_{i+1})`` (plain sums, no
    weights), ``y_i = conv(p_i)``.

    ``'sbifpn'``: a top-down path ``t_{L-1} = x_{L-1}``, ``t_i = node(x_i, up(t_{i+1}))`` and a bottom-up path
    whose source is the option ``bottom_up``:

    * ``'parallel'`` (default, kdtools' reading of "symmetric"): the bottom-up path mirrors the top-down one and also
      starts from the inputs, ``b_0 = x_0``, ``b_i = node(x_i, down(b_{i-1}))``; each output fuses both paths with
      its input, ``y_i = node(x_i, t_i, b_i)`` (``y_0 = node(x_0, t_0)``, ``y_{L-1} = node(x_{L-1}, b_{L-1})``).
      P3's input reaches P7 through ``L - 1`` bottom-up nodes and the output node, without the top-down conv
      BiFPN puts first: the shorter low-to-high path.
    * ``'sequential'`` (BiFPN's order): the bottom-up path runs on the top-down outputs, ``y_0 = t_0`` (the top-down
      node of the finest level), ``y_i = node(x_i, t_i, down(y_{i-1}))`` and ``y_{L-1} = node(x_{L-1},
      down(y_{L-2}))``.

RFE (``rfe``, ``rfe_cfg``), on every output level, its own module per level
    ``RFE(x) = x + fuse(concat(branch_1x1(x), branch_1(x), ..., branch_n(x)))``. Each branch starts with a 1x1
    conv ``C -> mid`` (``mid_channels``, default ``C // 4``); for every kernel size ``k`` in ``kernels`` there are two
    asymmetric branches whose form is the option ``mode``:

    * ``'split'`` (default): a wide branch, one ``1 x k`` conv, and a tall branch, one ``k x 1`` conv: receptive
      fields of ``1 x k`` and ``k x 1`` for wide and tall faces, weighed against each other by the fuse conv;
    * ``'cascade'``: ``1 x k`` then ``k x 1``, and ``k x 1`` then ``1 x k``: two factorised ``k x k`` fields.

    The asymmetric convs use ``dilation`` (default 1) with "same" padding, so C and H x W are kept. ``fuse`` is a 1x1
    conv ``(1 + 2 n) mid -> C`` + norm without activation, and the residual add keeps the identity path (RFB-style).
    ``RFE.receptive_field`` is the (height, width) of the union of the branches' fields, summed from the convs built:
    a stride-1 conv of kernel ``k`` and dilation ``d`` adds ``(k - 1) d`` along its axis.

AM (``attention``, ``attention_cfg``), on every output level after the RFE, its own module per level
    CBAM-style channel then spatial attention. Channel: ``a_c = sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))`` with a
    shared MLP ``C -> C / reduction -> C`` (1x1 convs with bias, ReLU between). Spatial:
    ``a_s = sigmoid(conv_k([mean_c(z), max_c(z)]))``, a ``k x k`` conv (``spatial_kernel``, default 7, with bias)
    on the channel mean and max. The option ``order``: ``'sequential'`` (default, CBAM) computes ``a_s`` from
    ``z = x * a_c``; ``'parallel'`` from ``z = x``. The output is ``x * a_c * a_s``: shape kept.

With ``fusion='fpn', rfe=False, attention=False`` the neck is an FPN with extra levels on the input (the
``norm_cfg``/``act_cfg`` of its convs aside: set both to ``None`` for mmdet FPN's plain convs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import nn

FUSIONS = ("sbifpn", "fpn")
BOTTOM_UP = ("parallel", "sequential")
RFE_MODES = ("split", "cascade")
ATTENTION_ORDERS = ("sequential", "parallel")
DEFAULT_NORM = dict(type="BN", requires_grad=True)
DEFAULT_ACT = dict(type="ReLU")


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    """Raise a ValueError naming the accepted values when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"Unknown {name} {value!r}; use one of {', '.join(repr(c) for c in choices)}.")


def _resize_to(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``x`` resized (nearest) to ``target``'s height and width when they differ."""
    if x.shape[-2:] == target.shape[-2:]:
        return x
    return F.interpolate(x, size=target.shape[-2:], mode="nearest")


def _up(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour upsampling of a coarser level to ``target``'s size."""
    return F.interpolate(x, size=target.shape[-2:], mode="nearest")


def _down(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """3x3 stride-2 max pooling of a finer level, matched to ``target``'s size."""
    return _resize_to(F.max_pool2d(x, kernel_size=3, stride=2, padding=1), target)


# ---------------------------------------------------------------------------------------------------- RFE


def _conv_extent(conv: nn.Conv2d) -> tuple[int, int]:
    """How much a stride-1 conv widens a receptive field: ``(k - 1) * d`` along height and width."""
    if conv.stride != (1, 1):
        raise ValueError(f"receptive_field assumes stride-1 convs, got stride {conv.stride}.")
    (kh, kw), (dh, dw) = conv.kernel_size, conv.dilation
    return (kh - 1) * dh, (kw - 1) * dw


def _branch_field(branch: nn.Module) -> tuple[int, int]:
    """Receptive field (height, width) of a chain of stride-1 convs."""
    height, width = 1, 1
    for module in branch.modules():
        if isinstance(module, nn.Conv2d):
            grow_h, grow_w = _conv_extent(module)
            height, width = height + grow_h, width + grow_w
    return height, width


@MODELS.register_module()
class RFE(BaseModule):
    """Receptive Field Enhancement: a 1x1 branch and asymmetric-kernel branches, concatenated, fused, added to x.

    Args:
        channels: input and output channels ``C``.
        kernels: the asymmetric kernel sizes ``k`` (odd); each gives two branches (see ``mode``).
        mode: ``'split'`` (a ``1 x k`` branch and a ``k x 1`` branch) or ``'cascade'`` (``1 x k`` then ``k x 1``,
            and ``k x 1`` then ``1 x k``).
        mid_channels: channels of every branch; default ``max(C // 4, 1)``.
        dilation: dilation of the asymmetric convs.
        norm_cfg: norm layer of every conv; act_cfg: activation of the branch convs (the fuse conv has none).
    """

    def __init__(
        self,
        channels: int,
        kernels: Sequence[int] = (3, 5),
        mode: str = "split",
        mid_channels: int | None = None,
        dilation: int = 1,
        norm_cfg: dict | None = DEFAULT_NORM,
        act_cfg: dict | None = DEFAULT_ACT,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        _check_choice("RFE mode", mode, RFE_MODES)
        self._check_kernels(kernels, dilation)
        self.channels, self.kernels, self.mode, self.dilation = channels, tuple(kernels), mode, dilation
        self.mid_channels = mid_channels or max(channels // 4, 1)
        conv = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.branches = nn.ModuleList([self._reduce(conv)])
        for k in self.kernels:
            for first in ((1, k), (k, 1)):
                self.branches.append(self._asymmetric_branch(first, conv))
        self.fuse = ConvModule(len(self.branches) * self.mid_channels, channels, 1, norm_cfg=norm_cfg, act_cfg=None)

    @staticmethod
    def _check_kernels(kernels: Sequence[int], dilation: int) -> None:
        if not kernels or any(k < 1 or k % 2 == 0 for k in kernels):
            raise ValueError(f"RFE kernels must be a non-empty list of odd sizes (e.g. (3, 5)), got {kernels}.")
        if dilation < 1:
            raise ValueError(f"RFE dilation must be >= 1, got {dilation}.")

    def _reduce(self, conv: dict) -> ConvModule:
        return ConvModule(self.channels, self.mid_channels, 1, **conv)

    def _asymmetric(self, kernel: tuple[int, int], conv: dict) -> ConvModule:
        padding = tuple((k - 1) // 2 * self.dilation for k in kernel)
        return ConvModule(self.mid_channels, self.mid_channels, kernel, padding=padding, dilation=self.dilation,
                          **conv)

    def _asymmetric_branch(self, first: tuple[int, int], conv: dict) -> nn.Sequential:
        layers = [self._reduce(conv), self._asymmetric(first, conv)]
        if self.mode == "cascade":
            layers.append(self._asymmetric(first[::-1], conv))
        return nn.Sequential(*layers)

    @property
    def receptive_field(self) -> tuple[int, int]:
        """(height, width) of the union of the branches' receptive fields, from the convs built."""
        fields = [_branch_field(branch) for branch in self.branches]
        return max(h for h, _ in fields), max(w for _, w in fields)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fuse(torch.cat([branch(x) for branch in self.branches], dim=1))


# ---------------------------------------------------------------------------------------------------- AM


@MODELS.register_module()
class OcclusionAttention(BaseModule):
    """Channel attention (avg + max pooled, shared MLP) and spatial attention (channel mean + max, k x k conv).

    Args:
        channels: input channels ``C``.
        reduction: the MLP's hidden width is ``max(C // reduction, 1)``.
        spatial_kernel: odd kernel size of the spatial attention conv.
        order: ``'sequential'`` (spatial attention computed on the channel-attended map, CBAM) or ``'parallel'``
            (both computed on the input).
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        spatial_kernel: int = 7,
        order: str = "sequential",
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        _check_choice("attention order", order, ATTENTION_ORDERS)
        if reduction < 1 or spatial_kernel < 1 or spatial_kernel % 2 == 0:
            raise ValueError(f"reduction must be >= 1 and spatial_kernel odd, got {reduction}, {spatial_kernel}.")
        self.order = order
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2)

    def channel_attention(self, x: torch.Tensor) -> torch.Tensor:
        """``sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))``, shape (N, C, 1, 1)."""
        return torch.sigmoid(self.mlp(x.mean(dim=(2, 3), keepdim=True)) + self.mlp(x.amax(dim=(2, 3), keepdim=True)))

    def spatial_attention(self, z: torch.Tensor) -> torch.Tensor:
        """``sigmoid(conv([mean_c(z), max_c(z)]))``, shape (N, 1, H, W)."""
        pooled = torch.cat([z.mean(dim=1, keepdim=True), z.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.spatial(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended = x * self.channel_attention(x)
        source = attended if self.order == "sequential" else x
        return attended * self.spatial_attention(source)


# ---------------------------------------------------------------------------------------------------- fusion


class FusionNode(nn.Module):
    """Sum of same-sized inputs (fast normalised fusion when ``weighted``), then a 3x3 conv + norm + activation."""

    def __init__(self, num_inputs: int, channels: int, weighted: bool, conv: dict, depthwise: bool,
                 eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_inputs)) if weighted else None
        conv_type = DepthwiseSeparableConvModule if depthwise else ConvModule
        self.conv = conv_type(channels, channels, 3, padding=1, **conv)

    def fusion_weights(self) -> torch.Tensor | None:
        """The non-negative normalised weights ``relu(a) / (eps + sum relu(a))``; None for a plain sum."""
        if self.weight is None:
            return None
        weight = F.relu(self.weight)
        return weight / (weight.sum() + self.eps)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        weights = self.fusion_weights()
        if weights is None:
            return self.conv(sum(inputs))
        return self.conv(sum(w * f for w, f in zip(weights, inputs, strict=True)))


class FPNLayer(nn.Module):
    """Top-down plain sums, then a conv node per level: ``y_i = conv(x_i + up(p_{i+1}))``."""

    def __init__(self, num_levels: int, channels: int, conv: dict, depthwise: bool) -> None:
        super().__init__()
        self.out_nodes = nn.ModuleList(
            [FusionNode(1, channels, False, conv, depthwise) for _ in range(num_levels)])

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        sums = [x[-1]]
        for level in range(len(x) - 2, -1, -1):
            sums.insert(0, x[level] + _up(sums[0], x[level]))
        return [node([p]) for node, p in zip(self.out_nodes, sums, strict=True)]


class SBiFPNLayer(nn.Module):
    """One SBiFPN repeat: a weighted top-down path and a weighted bottom-up path (``'parallel'`` or
    ``'sequential'``), see the module docstring."""

    def __init__(self, num_levels: int, channels: int, conv: dict, depthwise: bool, bottom_up: str,
                 eps: float) -> None:
        super().__init__()
        self.bottom_up = bottom_up

        def node(num_inputs: int) -> FusionNode:
            return FusionNode(num_inputs, channels, True, conv, depthwise, eps)

        self.td_nodes = nn.ModuleList([node(2) for _ in range(num_levels - 1)])  # levels 0 .. L-2
        if bottom_up == "parallel":
            self.bu_nodes = nn.ModuleList([node(2) for _ in range(num_levels - 1)])  # levels 1 .. L-1
            self.out_nodes = nn.ModuleList([node(2 if i in (0, num_levels - 1) else 3) for i in range(num_levels)])
        else:
            self.bu_nodes = nn.ModuleList([node(2 if i == num_levels - 1 else 3) for i in range(1, num_levels)])
            self.out_nodes = nn.ModuleList()

    def _top_down(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        td = [x[-1]]
        for level in range(len(x) - 2, -1, -1):
            td.insert(0, self.td_nodes[level]([x[level], _up(td[0], x[level])]))
        return td

    def _parallel(self, x: list[torch.Tensor], td: list[torch.Tensor]) -> list[torch.Tensor]:
        last = len(x) - 1
        bu = [x[0]]
        for level in range(1, len(x)):
            bu.append(self.bu_nodes[level - 1]([x[level], _down(bu[-1], x[level])]))
        outputs = []
        for level, node in enumerate(self.out_nodes):
            sources = [x[level]] + ([td[level]] if level < last else []) + ([bu[level]] if level > 0 else [])
            outputs.append(node(sources))
        return outputs

    def _sequential(self, x: list[torch.Tensor], td: list[torch.Tensor]) -> list[torch.Tensor]:
        last = len(x) - 1
        outputs = [td[0]]
        for level in range(1, len(x)):
            sources = [x[level]] + ([td[level]] if level < last else []) + [_down(outputs[-1], x[level])]
            outputs.append(self.bu_nodes[level - 1](sources))
        return outputs

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        td = self._top_down(x)
        return self._parallel(x, td) if self.bottom_up == "parallel" else self._sequential(x, td)

    def fusion_nodes(self) -> list[FusionNode]:
        return [*self.td_nodes, *self.bu_nodes, *self.out_nodes]


# ---------------------------------------------------------------------------------------------------- neck


@MODELS.register_module()
class EfficientFaceNeck(BaseModule):
    """EfficientFace's neck: laterals, extra levels, SBiFPN (or FPN) fusion, then RFE and attention per output.

    Args:
        in_channels: channels of each backbone feature.
        out_channels: channels of every output level.
        num_outs: number of output levels (extra stride-2 levels are added beyond the used backbone ones).
        start_level, end_level: the backbone levels used, ``in_channels[start_level:end_level + 1]`` (``-1``: last).
        fusion: ``'sbifpn'`` or ``'fpn'``.
        bottom_up: the SBiFPN bottom-up path, ``'parallel'`` (from the inputs) or ``'sequential'`` (BiFPN's).
        rfe, attention: add an ``RFE`` / ``OcclusionAttention`` to every output level.
        num_repeats: number of stacked fusion layers.
        rfe_cfg, attention_cfg: extra arguments of ``RFE`` / ``OcclusionAttention``.
        depthwise: depthwise-separable 3x3 convs in the fusion nodes.
        norm_cfg: norm of every conv (laterals, extra levels, nodes, RFE); act_cfg: activation of the extra-level
            convs, the fusion nodes and the RFE branches.
        eps: the fast normalised fusion's epsilon.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        start_level: int = 0,
        end_level: int = -1,
        fusion: str = "sbifpn",
        bottom_up: str = "parallel",
        rfe: bool = True,
        attention: bool = True,
        num_repeats: int = 1,
        rfe_cfg: dict | None = None,
        attention_cfg: dict | None = None,
        depthwise: bool = False,
        norm_cfg: dict | None = DEFAULT_NORM,
        act_cfg: dict | None = DEFAULT_ACT,
        eps: float = 1e-4,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        _check_choice("fusion", fusion, FUSIONS)
        _check_choice("bottom_up", bottom_up, BOTTOM_UP)
        used = self._used_channels(list(in_channels), start_level, end_level, num_outs, num_repeats)
        self.in_channels, self.out_channels, self.num_outs = list(in_channels), out_channels, num_outs
        self.start_level, self.fusion = start_level, fusion
        self.num_ins = len(used)
        conv = dict(norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.lateral_convs = nn.ModuleList(
            [ConvModule(c, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None) for c in used])
        self.extra_convs = nn.ModuleList(
            [ConvModule(used[-1] if i == 0 else out_channels, out_channels, 3, stride=2, padding=1, **conv)
             for i in range(num_outs - len(used))])
        self.layers = nn.ModuleList([self._fusion_layer(fusion, bottom_up, conv, depthwise, eps)
                                     for _ in range(num_repeats)])
        rfe_args = dict(dict(norm_cfg=norm_cfg, act_cfg=act_cfg), **(rfe_cfg or {}))
        self.rfes = nn.ModuleList([RFE(out_channels, **rfe_args) for _ in range(num_outs)]) if rfe else None
        self.attentions = (nn.ModuleList([OcclusionAttention(out_channels, **(attention_cfg or {}))
                                          for _ in range(num_outs)]) if attention else None)

    @staticmethod
    def _used_channels(in_channels: list[int], start_level: int, end_level: int, num_outs: int,
                       num_repeats: int) -> list[int]:
        """The channels of the used backbone levels; checks levels, num_outs and num_repeats."""
        end = len(in_channels) - 1 if end_level == -1 else end_level
        if not 0 <= start_level <= end < len(in_channels):
            raise ValueError(f"start_level {start_level} / end_level {end_level} do not select levels of "
                             f"in_channels {in_channels} (0 <= start_level <= end_level < {len(in_channels)}).")
        used = in_channels[start_level:end + 1]
        if num_outs < len(used):
            raise ValueError(f"num_outs ({num_outs}) must be at least the number of used backbone levels "
                             f"({len(used)}); raise num_outs or start_level.")
        if num_outs < 2 or num_repeats < 1:
            raise ValueError(f"num_outs must be >= 2 and num_repeats >= 1, got {num_outs}, {num_repeats}.")
        return used

    def _fusion_layer(self, fusion: str, bottom_up: str, conv: dict, depthwise: bool, eps: float) -> nn.Module:
        if fusion == "fpn":
            return FPNLayer(self.num_outs, self.out_channels, conv, depthwise)
        return SBiFPNLayer(self.num_outs, self.out_channels, conv, depthwise, bottom_up, eps)

    def fusion_weights(self) -> list[torch.Tensor]:
        """The normalised weights of every weighted fusion node (empty for ``fusion='fpn'``)."""
        nodes = [m for m in self.modules() if isinstance(m, FusionNode) and m.weight is not None]
        return [node.fusion_weights() for node in nodes]

    def _levels(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Lateral outputs of the used backbone levels, then the extra levels."""
        used = inputs[self.start_level:self.start_level + self.num_ins]
        levels = [lateral(f) for lateral, f in zip(self.lateral_convs, used, strict=True)]
        source = used[-1]
        for conv in self.extra_convs:
            source = conv(source)
            levels.append(source)
        return levels

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"EfficientFaceNeck got {len(inputs)} features for in_channels {self.in_channels}.")
        levels = self._levels(inputs)
        for layer in self.layers:
            levels = layer(levels)
        if self.rfes is not None:
            levels = [rfe(f) for rfe, f in zip(self.rfes, levels, strict=True)]
        if self.attentions is not None:
            levels = [att(f) for att, f in zip(self.attentions, levels, strict=True)]
        return tuple(levels)
