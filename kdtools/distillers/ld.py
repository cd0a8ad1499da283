"""LD: localization distillation of GFL box distributions.

Zheng et al., "Localization Distillation for Dense Object Detection", CVPR 2022 (and TPAMI 2023). Follows
mmdet's ``LDHead`` for the main region, with its ``KnowledgeDistillationKLDivLoss``.

A GFL head predicts each side k of the box at location i as logits z_ik over reg_max + 1 bins. LD makes the
student's distributions match the teacher's, softened by a temperature T::

    l_ik   = T^2 * mean_bins KL(softmax(z^T_ik / T) || softmax(z^S_ik / T))
    L_main = w       * sum_{i in P} v_i * sum_k l_ik / 4,    v_i = max_c sigmoid(s^S_ic)  (detached)
    L_vlr  = w * r   * sum_{i in V} u_i * sum_k l_ik / 4,    u_i = max IoU of anchor i with a GT box

P, the main distillation region: the positives of the student head's own assigner (ATSS for GFL), weighted
as mmdet's ``LDHead`` does. V, the valuable localization region: locations outside P, not ignored by the
head, whose anchor overlaps a GT box with IoU >= ``vlr_iou`` (the paper takes the locations that ATSS's
threshold, lowered by a factor alpha, would accept; kdtools uses a fixed IoU and weights them by it).

Published: GFL-R101 -> GFL-R50, 1x COCO, 40.1 -> 42.1 mAP (with the classification KD of the main region,
which kdtools leaves to a feature or head distiller of its own). Defaults: T = 10, w = 0.25 as mmdet's LD
config, main region only (r = 0) as mmdet's ``LDHead``. The region V is an option: the authors' code weighs it
r = 0.25 (``loss_ld_neg = 0.25 * loss_ld(...)`` in HikariTJU/LD's ``LDHead``) over ATSS's few candidate
locations per box; with the IoU rule above it covers many more locations and, summed, outweighed the
detection loss several times on the toy GFL pair. L_main equals mmdet's ``loss_ld`` on the same tensors.
"""
from __future__ import annotations

from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor

from kdtools.detectors.taps import HeadOutputs
from kdtools.distillers.base import DistillBatch
from kdtools.distillers.head import HeadDistiller
from kdtools.modules.dense_heads import DenseTargets, assigned_targets, distribution_kl, flatten_levels
from kdtools.registry import DISTILLERS


def best_gt_iou(targets: DenseTargets, gt_bboxes: list[Tensor]) -> Tensor:
    """Per location: the IoU of its anchor with the GT box it overlaps most (0 for an image without boxes)."""
    best = targets.anchors.new_zeros(len(targets.anchors))
    for image, boxes in enumerate(gt_bboxes):
        rows = targets.images == image
        if len(boxes):
            best[rows] = bbox_overlaps(targets.anchors[rows], boxes.to(best.dtype)).max(dim=1).values
    return best


@DISTILLERS.register_module()
class LD(HeadDistiller):
    """KL divergence between GFL box distributions at temperature ``tau``, main and valuable-localization regions.

    Args:
        tau: the temperature T.
        vlr_weight: r, the weight of the valuable localization region relative to the main region (0: off).
        vlr_iou: the anchor-GT IoU from which a non-positive location belongs to the region.
        **kwargs: :class:`HeadDistiller` arguments; ``loss_weight`` (w) defaults to 0.25.
    """

    head_types = ("GFLHead",)
    uses_targets = True
    needs = "box distributions (reg_max + 1 bins per side)"
    settable = (*HeadDistiller.settable, "vlr_weight")

    def __init__(self, tau: float = 10.0, vlr_weight: float = 0.0, vlr_iou: float = 0.25, **kwargs) -> None:
        kwargs.setdefault("loss_weight", 0.25)
        super().__init__(**kwargs)
        self.tau = float(tau)
        self.vlr_weight = float(vlr_weight)
        self.vlr_iou = float(vlr_iou)

    def side_kl(self, student: HeadOutputs, teacher: HeadOutputs) -> Tensor:
        """sum_k l_ik per location (rows of :func:`flatten_levels`)."""
        bins = student.head.reg_max + 1
        s = flatten_levels(student.bbox_preds).reshape(-1, bins)
        t = flatten_levels(teacher.bbox_preds).reshape(-1, bins)
        return distribution_kl(s, t, self.tau).view(-1, 4).sum(dim=1)

    def head_loss(self, student: HeadOutputs, teacher: HeadOutputs, batch: DistillBatch) -> dict[str, Tensor]:
        targets = assigned_targets(student.head, student.cls_scores, batch)
        kl = self.side_kl(student, teacher)
        score = flatten_levels(student.cls_scores).detach().sigmoid().max(dim=1).values
        main = (kl * score * targets.positive).sum() / 4
        losses = {"": main}
        if self.vlr_weight:
            iou = best_gt_iou(targets, batch.gt_bboxes)
            region = (iou >= self.vlr_iou) & ~targets.positive & (targets.label_weights > 0)
            losses["vlr"] = self.vlr_weight * (kl * iou * region).sum() / 4
        return losses
