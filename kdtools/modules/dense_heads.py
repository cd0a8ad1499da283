"""What the head distillers share: dense-head outputs flattened over levels, the head's own target assignment,
GFL box decoding, and the two prediction-mimicking terms.

Flattening follows mmdet's per-level loops, so sums over the flattened rows equal mmdet's per-level sums: rows
are ordered by level, then image, then position (``permute(0, 2, 3, 1).reshape(-1, K)`` per level).

Binary classification distillation (BCKD, also CrossKD's class term), per location i and class c with
logits s (student) and t (teacher), p = sigmoid::

    l_ic = BCE(s_ic, p(t_ic)) * |p(s_ic) - p(t_ic)|^beta

Distribution distillation (LD; mmdet's ``KnowledgeDistillationKLDivLoss``), per box side with bin logits::

    l = T^2 * mean_bins KL(softmax(t / T) || softmax(s / T))      (mmdet: F.kl_div(...).mean(1) * T * T)

(CrossKD sums over the bins instead, as its authors' ``class_reduction='sum'``.)
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from mmdet.utils import reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor, nn

if TYPE_CHECKING:
    from kdtools.distillers.base import DistillBatch


def flatten_levels(maps: Sequence[Tensor]) -> Tensor:
    """Per-level N x K x H x W maps as one (levels * N * H * W) x K matrix, mmdet's row order."""
    return torch.cat([m.permute(0, 2, 3, 1).reshape(-1, m.shape[1]) for m in maps]).float()


def unflatten_levels(rows: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """The inverse of :func:`flatten_levels`: rows back as per-level maps shaped (and typed) like ``like``."""
    sizes = [m.shape[0] * m.shape[2] * m.shape[3] for m in like]
    return [part.reshape(m.shape[0], m.shape[2], m.shape[3], -1).permute(0, 3, 1, 2).to(m.dtype).contiguous()
            for part, m in zip(rows.split(sizes), like)]


@dataclass(frozen=True)
class DenseTargets:
    """The head's own assignment for this batch, one row per location (flattened like :func:`flatten_levels`).

    ``images`` is the image index of each row; ``labels`` is the class of a positive location and
    ``num_classes`` elsewhere; ``label_weights`` is 0 where the head ignores a location; ``num_pos`` is mmdet's
    ``avg_factor``: the number of positives averaged over the processes of a distributed run (as GFL's loss and
    the authors' distillers reduce it), at least 1.
    """

    anchors: Tensor
    strides: Tensor
    images: Tensor
    labels: Tensor
    label_weights: Tensor
    bbox_targets: Tensor
    num_pos: float
    num_classes: int

    @property
    def positive(self) -> Tensor:
        return (self.labels >= 0) & (self.labels < self.num_classes)


def gt_instances(batch: DistillBatch) -> list[InstanceData]:
    if batch.gt_labels is None or batch.img_metas is None:
        raise ValueError("This distiller assigns targets like the head does: it needs DistillBatch(..., gt_labels=..., "
                         "img_metas=...) (DistillBatch.from_data_samples fills them).")
    return [InstanceData(bboxes=boxes, labels=labels) for boxes, labels in zip(batch.gt_bboxes, batch.gt_labels)]


def targets_key(head: nn.Module) -> tuple[str, int]:
    return ("targets", id(head))


def assigned_targets(head: nn.Module, cls_scores: Sequence[Tensor], batch: DistillBatch) -> DenseTargets:
    """The GFL-style head's ``get_targets`` on this batch (its assigner, e.g. ATSS), cached on the batch so that
    the distillers of a step share one assignment; the student's own, recorded in its loss
    (:func:`recorded_targets`), when the detector put it there."""
    key = targets_key(head)
    if key not in batch.cache:
        sizes = [score.shape[-2:] for score in cls_scores]
        anchors, valid = head.get_anchors(sizes, batch.img_metas, device=cls_scores[0].device)
        batch.cache[key] = dense_targets(head, head.get_targets(anchors, valid, gt_instances(batch), batch.img_metas))
    return batch.cache[key]


def dense_targets(head: nn.Module, assignment: tuple) -> DenseTargets:
    """``DenseTargets`` from what a GFL-style head's ``get_targets`` returns (per-level lists and avg_factor)."""
    anchors, labels, label_weights, bbox_targets, _, num_pos = assignment
    device = anchors[0].device
    strides = torch.cat([torch.full((a.numel() // 4,), float(s[0]), device=device)
                         for a, s in zip(anchors, head.prior_generator.strides)])
    images = torch.cat([torch.arange(a.shape[0], device=device).repeat_interleave(a.shape[1]) for a in anchors])
    return DenseTargets(
        anchors=torch.cat([a.reshape(-1, 4) for a in anchors]),
        strides=strides,
        images=images,
        labels=torch.cat([x.reshape(-1) for x in labels]),
        label_weights=torch.cat([x.reshape(-1) for x in label_weights]).float(),
        bbox_targets=torch.cat([x.reshape(-1, 4) for x in bbox_targets]),
        num_pos=max(float(reduce_mean(torch.tensor(float(num_pos), device=device))), 1.0),
        num_classes=head.num_classes,
    )


@contextmanager
def recorded_targets(heads: Sequence[nn.Module]) -> Iterator[dict[tuple[str, int], DenseTargets]]:
    """While active, what each of ``heads`` (GFL-style) returns from ``get_targets`` in its own loss, keyed as
    :func:`assigned_targets` caches it: put into ``batch.cache``, the distillers reuse the student's assignment
    instead of running the assigner again."""
    records: dict[tuple[str, int], DenseTargets] = {}

    def recording(head: nn.Module, get_targets: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            assignment = get_targets(*args, **kwargs)
            records[targets_key(head)] = dense_targets(head, assignment)
            return assignment
        return wrapper

    for head in heads:
        head.get_targets = recording(head, head.get_targets)
    try:
        yield records
    finally:
        for head in heads:
            del head.get_targets  # the class's method again


def decode_distribution_boxes(head: nn.Module, targets: DenseTargets, bbox_preds: Tensor) -> Tensor:
    """Boxes (x1, y1, x2, y2, in units of each level's stride) from GFL box distributions (rows x 4(reg_max+1)),
    as GFL's loss decodes them: the expected distance per side from the anchor centre."""
    centres = head.anchor_center(targets.anchors) / targets.strides[:, None]
    return head.bbox_coder.decode(centres, head.integral(bbox_preds))


def binary_kd(student: Tensor, teacher: Tensor, beta: float) -> Tensor:
    """Per-element BCE(s, sigmoid(t)) * |sigmoid(s) - sigmoid(t)|^beta (rows x classes)."""
    target = teacher.sigmoid()
    focal = (student.sigmoid() - target).abs().pow(beta)
    return F.binary_cross_entropy_with_logits(student, target, reduction="none") * focal


def distribution_kl(student: Tensor, teacher: Tensor, tau: float, over_bins: str = "mean") -> Tensor:
    """Per-row T^2 * KL(softmax(t/T) || softmax(s/T)), its terms averaged (mmdet's ``class_reduction='mean'``)
    or summed (``'sum'``) over the bins (rows x bins -> rows)."""
    target = F.softmax(teacher / tau, dim=1)
    kl = F.kl_div(F.log_softmax(student / tau, dim=1), target, reduction="none")
    return (kl.mean(1) if over_bins == "mean" else kl.sum(1)) * tau * tau


def teacher_confidence(teacher_cls: Tensor, targets: DenseTargets) -> Tensor:
    """Per location: the teacher's highest class probability, 0 where the head ignores the location."""
    return teacher_cls.sigmoid().max(dim=1).values * (targets.label_weights > 0)
