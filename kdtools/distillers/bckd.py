"""BCKD: binary classification and IoU-based localization distillation.

Yang et al., "Bridging Cross-task Protocol Inconsistency for Distillation in Dense Object Detection",
ICCV 2023. Follows the authors' GFL code (TinyTigerPan/BCKD, ``LDHead.loss_single`` with ``NovelKDLoss`` and
``bckd_r50_gflv1_r101_fpn_coco_1x.py``).

The classification distillation treats every class score as its own binary classification, as the
detector's sigmoid classifier does, instead of a softmax over classes; the localization distillation
compares decoded boxes by their GIoU instead of their coordinates. On the student's own predictions (class
logits s, boxes b decoded from GFL's distributions), per location i and class c, p = sigmoid::

    L_cls = w_cls * sum_{i,c} a_i * BCE(s^S_ic, p^T_ic) * |p^S_ic - p^T_ic|^beta / N_pos
    u_i   = a_i * max_c |p^T_ic - p^S_ic|                                        (detached)
    L_loc = w_loc * sum_i u_i * (1 - GIoU(b^S_i, b^T_i)) / N_pos

a_i is the student head's label weight (0 where its assigner ignores a location), N_pos its positives (at
least 1, as mmdet's avg_factor). u_i puts the localization term where student and teacher disagree most on a
class. As in the authors' code, both sums run over the levels on which the head has positives in the batch
(``positive_levels_only``); False sums over every level.

Defaults are the authors' GFL config: beta = 1, w_cls = 1, w_loc = 4.
"""
from __future__ import annotations

import torch
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

from kdtools.detectors.taps import HeadOutputs
from kdtools.distillers.base import DistillBatch
from kdtools.distillers.head import HeadDistiller
from kdtools.modules.dense_heads import (
    DenseTargets,
    assigned_targets,
    binary_kd,
    decode_distribution_boxes,
    flatten_levels,
)
from kdtools.registry import DISTILLERS


def on_positive_levels(targets: DenseTargets) -> Tensor:
    """Per location: whether its level (its stride) holds a positive of the batch."""
    return torch.isin(targets.strides, targets.strides[targets.positive])


@DISTILLERS.register_module()
class BCKD(HeadDistiller):
    """Binary classification distillation and GIoU-based localization distillation on GFL heads.

    Args:
        beta: the exponent of the classification term's focal factor.
        cls_weight: w_cls.
        loc_weight: w_loc.
        positive_levels_only: both terms on the levels with positives only (the authors' code), else on all.
        **kwargs: :class:`HeadDistiller` arguments (``loss_weight`` multiplies both terms).
    """

    head_types = ("GFLHead",)
    uses_targets = True
    needs = "box distributions to decode boxes from"

    def __init__(self, beta: float = 1.0, cls_weight: float = 1.0, loc_weight: float = 4.0,
                 positive_levels_only: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.beta = float(beta)
        self.cls_weight = float(cls_weight)
        self.loc_weight = float(loc_weight)
        self.positive_levels_only = bool(positive_levels_only)

    def head_loss(self, student: HeadOutputs, teacher: HeadOutputs, batch: DistillBatch) -> dict[str, Tensor]:
        targets = assigned_targets(student.head, student.cls_scores, batch)
        weight = targets.label_weights
        if self.positive_levels_only:
            weight = weight * on_positive_levels(targets)
        student_cls, teacher_cls = flatten_levels(student.cls_scores), flatten_levels(teacher.cls_scores)
        cls = (binary_kd(student_cls, teacher_cls, self.beta) * weight[:, None]).sum() / targets.num_pos
        disagreement = (teacher_cls.sigmoid() - student_cls.detach().sigmoid()).abs().max(dim=1).values * weight
        boxes = [decode_distribution_boxes(student.head, targets, flatten_levels(side.bbox_preds))
                 for side in (student, teacher)]
        giou = bbox_overlaps(*boxes, mode="giou", is_aligned=True, eps=1e-6)
        loc = (disagreement * (1 - giou)).sum() / targets.num_pos
        return {"cls": self.cls_weight * cls, "loc": self.loc_weight * loc}
