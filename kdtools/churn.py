"""Prediction churn: how much two retrains of a model disagree (Anil et al., 2018, Sec. 4).

For two runs a and b of the same config that differ only in their seed, on the same images::

    churn(a -> b) = #{confident detections of a with no confident same-class detection of b at IoU >= 0.5}
                    / #{confident detections of a}

with "confident" meaning score >= 0.3. :func:`churn` gives the mean of both directions; 0 means every confident
detection of either run is found by the other.
"""
from __future__ import annotations

import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import Runner
from torch import Tensor
from torchvision.ops import box_iou

from kdtools.checkpoint import load_student_weights

SCORE = 0.3
IOU = 0.5

Detections = list[tuple[Tensor, Tensor]]  # per image: boxes (n, 4) and labels (n,)


def unmatched(boxes: Tensor, labels: Tensor, other_boxes: Tensor, other_labels: Tensor, iou: float = IOU) -> Tensor:
    """Per detection of the first set: whether no detection of the other set of its class overlaps it by ``iou``."""
    if len(other_boxes) == 0:
        return torch.ones(len(boxes), dtype=torch.bool)
    same_class = labels[:, None] == other_labels[None, :]
    return ~((box_iou(boxes, other_boxes) >= iou) & same_class).any(dim=1)


def one_way(a: Detections, b: Detections, iou: float = IOU) -> float:
    """The share of a's detections (over every image) with no same-class match in b's."""
    misses = sum(int(unmatched(*da, *db, iou).sum()) for da, db in zip(a, b))
    total = sum(len(boxes) for boxes, _ in a)
    return misses / total if total else 0.0


def churn(a: Detections, b: Detections, iou: float = IOU) -> float:
    """The mean churn of both directions, 0-1."""
    return (one_way(a, b, iou) + one_way(b, a, iou)) / 2


@torch.no_grad()
def detections(cfg: Config, checkpoint: str, score: float = SCORE) -> Detections:
    """The confident detections (score >= ``score``) of a checkpoint of ``cfg``'s model (a plain detector; a
    distillation checkpoint's student is read) on ``cfg``'s validation set, in the data set's image order."""
    model = MODELS.build(cfg.model)
    load_student_weights(model, checkpoint)
    model.eval()
    loader = Runner.build_dataloader(cfg.val_dataloader)
    found = {}
    for batch in loader:
        for sample in model.test_step(batch):
            keep = sample.pred_instances.scores >= score
            found[sample.img_id] = (sample.pred_instances.bboxes[keep].float(), sample.pred_instances.labels[keep])
    return [found[key] for key in sorted(found)]
