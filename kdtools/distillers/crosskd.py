"""CrossKD: cross-head knowledge distillation.

Wang et al., "CrossKD: Cross-Head Knowledge Distillation for Object Detection", CVPR 2024. Follows the
authors' GFL code (jbwang1997/CrossKD, ``CrossKDGFL`` and ``crosskd_r50_gflv1_r101-2x-ms_fpn_1x_coco.py``).

The student's head features after its k-th conv module, f^S, are re-scaled per channel to the teacher's
statistics at the same point, then go through the teacher's remaining head layers (frozen): convs k+1..K,
``gfl_cls``, ``gfl_reg`` and the level's scale. These crossed predictions (s^X, z^X) mimic the teacher's own
(s^T, z^T); gradients reach the student through the teacher's layers, which never change::

    f^X   = relu(std_c(f^T) * (f^S - mean_c(f^S)) / (std_c(f^S) + 1e-6) + mean_c(f^T))     (relu if k > 0)
    L_cls = w_cls * sum_{i,c} a_i * BCE(s^X_ic, p^T_ic) * |p^X_ic - p^T_ic|^beta / N_pos    (p = sigmoid)
    v_i   = a_i * max_c p^T_ic
    L_box = w_box * sum_i v_i * sum_k T^2 * sum_bins KL(softmax(z^T_ik / T) || softmax(z^X_ik / T)) / 4
                  / sum_i v_i                                                              (box_loss='kl')
          = w_box * sum_i v_i * (1 - GIoU(b^X_i, b^T_i)) / sum_i v_i                        (box_loss='giou')

a_i is the student head's label weight (0 where its assigner ignores a location), N_pos its positives (mmdet's
avg_factor), z_ik the bin logits of side k, b the boxes decoded from the distributions. Statistics (mean_c,
std_c, unbiased) are per channel over N, H, W of the level.

f^S and f^T are the conv module's output after its activation, as the authors' code computes it: their
``forward_crosskd_single`` keeps the feature before ``cls_conv.activate``, but mmcv's ReLU there is in place,
so the kept tensor is the activated one (the re-scaled result is activated once more). ``crossing_input=
'pre_activation'`` reads the feature before the activation instead, as the paper's text describes it.

N_pos is at least 1 (kdtools' clamp; the authors' code divides by the positives as they are, which a batch
without positives turns into a division by ~0).

Defaults are the authors' GFL configs (R101 -> R50, R101 -> R18, and with PKD): k = 3 of 4 convs, w_cls = 1,
beta = 1, the box term as KL summed over the bins at T = 1 with w_box = 4 (``KnowledgeDistillationKLDivLoss(
class_reduction='sum', T=1, loss_weight=4)``). box_loss='giou' is their RetinaNet and ATSS setting, w_box = 1.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch.nn.functional as F
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor, nn

from kdtools.detectors.taps import HeadOutputs, Records
from kdtools.distillers.base import DistillBatch
from kdtools.distillers.head import HeadDistiller
from kdtools.distillers.pkd import channel_std_mean, standardise_channels
from kdtools.modules.dense_heads import (
    assigned_targets,
    binary_kd,
    decode_distribution_boxes,
    distribution_kl,
    flatten_levels,
    teacher_confidence,
)
from kdtools.registry import DISTILLERS

BOX_WEIGHTS = {"kl": 4.0, "giou": 1.0}  # the authors' configs: GFL (KL over bins), RetinaNet and ATSS (GIoU)
CROSSING_INPUTS = ("activated", "pre_activation")


@dataclass(frozen=True)
class HeadFeatures(HeadOutputs):
    """A head's outputs and its per-level classification and regression features after conv module k."""

    cls_feats: list[Tensor]
    reg_feats: list[Tensor]


def rescale_to(student: Tensor, teacher: Tensor) -> Tensor:
    """The student feature standardised per channel, then given the teacher's per-channel mean and std."""
    std, mean = channel_std_mean(teacher.float())
    return standardise_channels(student.float()) * std + mean


@DISTILLERS.register_module()
class CrossKD(HeadDistiller):
    """Student head features through the teacher's remaining head layers; crossed predictions mimic the teacher's.

    Args:
        reused_layer: k, the number of student head convs before the crossing (0: the head input).
        crossing_input: 'activated' (conv module k's output, as the authors' code) or 'pre_activation' (its
            feature before the ReLU, as the paper's text).
        beta: the exponent of the classification term's focal factor.
        cls_weight: w_cls.
        box_loss: 'kl' on the box distributions (summed over bins) or 'giou' on the decoded boxes.
        box_weight: w_box; None: the authors' weight of ``box_loss`` (4 for 'kl', 1 for 'giou').
        tau: the temperature T of box_loss='kl'.
        **kwargs: :class:`HeadDistiller` arguments (``loss_weight`` multiplies both terms).
    """

    head_types = ("GFLHead",)
    uses_targets = True
    needs = "box distributions and GFL's head layers (cls_convs, reg_convs, gfl_cls, gfl_reg, scales)"

    def __init__(self, reused_layer: int = 3, crossing_input: str = "activated", beta: float = 1.0,
                 cls_weight: float = 1.0, box_loss: str = "kl", box_weight: float | None = None, tau: float = 1.0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if box_loss == "ld":
            raise ValueError("CrossKD box_loss='ld' (the KL averaged over bins) is box_loss='kl', which sums over the "
                             "bins as the authors' code: use box_loss='kl' with box_weight divided by reg_max + 1.")
        if box_loss not in BOX_WEIGHTS:
            raise ValueError(f"Unknown CrossKD box_loss {box_loss!r}; use one of {list(BOX_WEIGHTS)}.")
        if crossing_input not in CROSSING_INPUTS:
            raise ValueError(f"Unknown CrossKD crossing_input {crossing_input!r}; use one of {CROSSING_INPUTS}.")
        self.reused_layer = int(reused_layer)
        self.crossing_input = crossing_input
        self.beta = float(beta)
        self.cls_weight = float(cls_weight)
        self.box_loss = box_loss
        self.box_weight = BOX_WEIGHTS[box_loss] if box_weight is None else float(box_weight)
        self.tau = float(tau)

    def feature_taps(self, head: str) -> list[str]:
        """Where the crossing starts: the branch convs' activations (their output, or their input for
        crossing_input='pre_activation'), or the head input for k = 0."""
        if self.reused_layer == 0:
            return [f"{head}:in"]
        suffix = ":in" if self.crossing_input == "pre_activation" else ""
        return [f"{head}.{branch}.{self.reused_layer - 1}.activate{suffix}" for branch in ("cls_convs", "reg_convs")]

    def tap_settings(self) -> dict[str, Any]:
        return {**super().tap_settings(), "reused_layer": self.reused_layer, "crossing_input": self.crossing_input}

    def student_taps(self) -> list[str]:
        return [self.student_head, *self.feature_taps(self.student_head)]

    def teacher_taps(self) -> list[str]:
        return [self.teacher_head, *self.feature_taps(self.teacher_head)]

    def _features(self, records: Records, head: str) -> HeadFeatures:
        taps = self.feature_taps(head)
        cls_feats, reg_feats = records.levels(taps[:1]), records.levels(taps[-1:])
        outputs = records.head(head)
        return HeadFeatures(outputs.cls_scores, outputs.bbox_preds, outputs.others, outputs.head, cls_feats, reg_feats)

    def inputs(self, student: Records, teacher: Records) -> tuple[HeadFeatures, HeadFeatures]:
        return self._features(student, self.student_head), self._features(teacher, self.teacher_head)

    def check_pair(self, student: HeadOutputs, teacher: HeadOutputs) -> None:
        super().check_pair(student, teacher)
        s, t = student.head, teacher.head
        if self.reused_layer > min(s.stacked_convs, t.stacked_convs):
            raise ValueError(f"CrossKD reused_layer={self.reused_layer}, but the heads have {s.stacked_convs} "
                             f"(student) and {t.stacked_convs} (teacher) convs; use 0 to {t.stacked_convs}.")
        s_channels = s.feat_channels if self.reused_layer else s.in_channels
        t_channels = t.feat_channels if self.reused_layer else t.in_channels
        if s_channels != t_channels:
            raise ValueError(f"CrossKD feeds the student's head features ({s_channels} channels) to the teacher's "
                             f"head layers ({t_channels} channels); use heads of equal width.")

    def crossed(self, student: HeadFeatures, teacher: HeadFeatures) -> tuple[list[Tensor], list[Tensor]]:
        """Per level: the teacher head's class logits and box distributions on the re-scaled student features."""
        head: nn.Module = teacher.head
        cls_scores, bbox_preds = [], []
        for level, scale in enumerate(head.scales):
            cls_feat = rescale_to(student.cls_feats[level], teacher.cls_feats[level])
            reg_feat = rescale_to(student.reg_feats[level], teacher.reg_feats[level])
            if self.reused_layer:
                cls_feat, reg_feat = F.relu(cls_feat), F.relu(reg_feat)
            for cls_conv, reg_conv in zip(head.cls_convs[self.reused_layer:], head.reg_convs[self.reused_layer:]):
                cls_feat, reg_feat = cls_conv(cls_feat), reg_conv(reg_feat)
            cls_scores.append(head.gfl_cls(cls_feat))
            bbox_preds.append(scale(head.gfl_reg(reg_feat)).float())
        return cls_scores, bbox_preds

    def training_only_pass(self, student: Records, teacher: Records) -> Callable[[], None]:
        """The crossing alone: the teacher's remaining head layers on the student's features, forward and
        backward to those features."""
        student_features, teacher_features = self.inputs(student, teacher)
        leaves = {field: [f.detach().requires_grad_() for f in getattr(student_features, field)]
                  for field in ("cls_feats", "reg_feats")}
        crossing_input = replace(student_features, **leaves)

        def crossing() -> None:
            cls_scores, bbox_preds = self.crossed(crossing_input, teacher_features)
            sum(x.sum() for x in (*cls_scores, *bbox_preds)).backward()
            for feature in (*leaves["cls_feats"], *leaves["reg_feats"]):
                feature.grad = None

        return crossing

    def head_loss(self, student: HeadFeatures, teacher: HeadFeatures, batch: DistillBatch) -> dict[str, Tensor]:
        targets = assigned_targets(student.head, student.cls_scores, batch)
        cls_scores, bbox_preds = self.crossed(student, teacher)
        crossed_cls, teacher_cls = flatten_levels(cls_scores), flatten_levels(teacher.cls_scores)
        cls = (binary_kd(crossed_cls, teacher_cls, self.beta) * targets.label_weights[:, None]).sum() / targets.num_pos
        weight = teacher_confidence(teacher_cls, targets)
        crossed_box, teacher_box = flatten_levels(bbox_preds), flatten_levels(teacher.bbox_preds)
        if self.box_loss == "giou":
            decoded = [decode_distribution_boxes(student.head, targets, b) for b in (crossed_box, teacher_box)]
            per_location = 1 - bbox_overlaps(*decoded, mode="giou", is_aligned=True, eps=1e-6)
        else:
            bins = student.head.reg_max + 1
            kl = distribution_kl(crossed_box.reshape(-1, bins), teacher_box.reshape(-1, bins), self.tau, "sum")
            per_location = kl.view(-1, 4).sum(dim=1) / 4
        box = (weight * per_location).sum() / weight.sum().clamp(min=1e-6)
        return {"cls": self.cls_weight * cls, "box": self.box_weight * box}
