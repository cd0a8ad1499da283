"""KD-DETR: distillation on consistent distillation points.

Wang et al., "KD-DETR: Knowledge Distillation for Detection Transformer with Consistent Distillation Points
Sampling", CVPR 2024. Follows the authors' code (Myleswork/KD-DETR: kd_engine.py, kd_loss.py,
kd_transformer.py; DAB-DETR), on DINO's decoder.

Teacher and student predict on the same points, so no matching is needed. Two groups of points, each decoded
in a separate pass over each model's own encoder memory (:func:`kdtools.detectors.queries.decode`: the groups
attend to themselves only, never to the student's own queries, whose training and predictions they leave
unchanged; the denoising queries never enter):

- general points: G = 300 random boxes sigmoid(z), z ~ N(0, 1)^4, drawn afresh every iteration and shared by
  the images of the batch, with zero content queries;
- specific points: the teacher's own queries' initial reference boxes (its matching queries), with zero
  content queries; their targets are the teacher's ordinary predictions.

For each group, with teacher logits t and boxes b^T of its last decoder layer, student logits s and boxes
b^S of each student decoder layer l, and per point the teacher's confidence w = max_k sigmoid(t_k)::

    L_cls = sum_l sum_points w * T^2 * mean_k KL(softmax(t / T) || softmax(s_l / T))_k        T = 10
    L_l1  = 5 * sum_l sum_points w * mean_coord |b^S_l - b^T| / sum w
    L_iou = 2 * sum_l sum_points w * (1 - GIoU(b^S_l, b^T)) / sum w

(L_cls is a weighted sum over the batch's points, unnormalised, as in the authors' code.) Logged as
``loss_kddetr_{general,specific}_{cls,l1,iou}``. Weights: 1, 5, 2 for both groups.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from torch import Tensor

from kdtools.detectors.queries import QueryOutputs, decode, with_leaf_memory
from kdtools.distillers.base import DistillBatch
from kdtools.distillers.query import QueryDistiller, check_decodable
from kdtools.registry import DISTILLERS


def kl_at_temperature(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Per point, T^2 * mean over classes of KL(softmax(t / T) || softmax(s / T)): ... x P."""
    target = F.softmax(teacher_logits / temperature, dim=-1)
    kl = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1), target, reduction="none")
    return kl.mean(dim=-1) * temperature ** 2


def point_losses(s_logits: Tensor, s_boxes: Tensor, t_logits: Tensor, t_boxes: Tensor,
                 temperature: float) -> tuple[Tensor, Tensor, Tensor]:
    """Unweighted (by the loss weights) L_cls, L_l1, L_iou of every student layer against the teacher's last:
    ``s_*`` L x N x P x (K or 4), ``t_*`` N x P x (K or 4)."""
    weight = t_logits.sigmoid().max(dim=-1).values  # N x P
    total = weight.sum().clamp(min=torch.finfo(weight.dtype).tiny)
    cls = (kl_at_temperature(s_logits, t_logits[None], temperature) * weight).sum()
    l1 = ((s_boxes - t_boxes[None]).abs().mean(dim=-1) * weight).sum() / total
    giou = bbox_overlaps(bbox_cxcywh_to_xyxy(s_boxes), bbox_cxcywh_to_xyxy(t_boxes[None].expand_as(s_boxes)),
                         mode="giou", is_aligned=True)
    return cls, l1, ((1 - giou) * weight).sum() / total


@DISTILLERS.register_module()
class KDDETR(QueryDistiller):
    """Distillation on general (random) and specific (the teacher's) points decoded by both models.

    Args:
        num_points: G, the general points per iteration.
        temperature: T of the KL.
        cls_weight: weight of the KL term.
        l1_weight: weight of the box L1.
        iou_weight: weight of the GIoU loss.
        groups: which point groups to use: ('general', 'specific') or one of them.
        **kwargs: :class:`QueryDistiller` arguments (``layer_map`` is not used: every student layer is
            distilled from the teacher's last).
    """

    GROUPS = ("general", "specific")

    def __init__(self, num_points: int = 300, temperature: float = 10.0, cls_weight: float = 1.0,
                 l1_weight: float = 5.0, iou_weight: float = 2.0, groups: tuple[str, ...] = GROUPS,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        unknown = sorted(set(groups) - set(self.GROUPS))
        if unknown or not groups:
            raise ValueError(f"KDDETR groups={groups!r}: choose one or more of {list(self.GROUPS)}.")
        self.num_points = int(num_points)
        self.temperature = float(temperature)
        self.weights = (float(cls_weight), float(l1_weight), float(iou_weight))
        self.groups = tuple(groups)

    def check_pair(self, student, teacher) -> None:
        """Also: both decoders can decode extra points (DINO-style: no ``query_pos`` input)."""
        super().check_pair(student, teacher)
        check_decodable(self, student, "student")
        check_decodable(self, teacher, "teacher")

    def checked_layer_map(self, student_layers: int, teacher_layers: int) -> list[int]:
        """Every student layer learns from the teacher's last layer (the authors' pairing)."""
        return [teacher_layers - 1] * student_layers

    def points(self, teacher: QueryOutputs) -> dict[str, Tensor]:
        """The reference boxes (N x P x 4 in [0, 1]) of each group."""
        n = teacher.cls_scores.shape[1]
        device = teacher.cls_scores.device
        points = {}
        if "general" in self.groups:
            points["general"] = torch.randn(self.num_points, 4, device=device).sigmoid().expand(n, -1, -1)
        if "specific" in self.groups:
            points["specific"] = teacher.references[0].detach()
        return points

    def group_targets(self, group: str, points: Tensor, teacher: QueryOutputs) -> tuple[Tensor, Tensor]:
        """The teacher's last-layer (logits, boxes) on a group's points: its ordinary predictions for the specific
        points, a separate pass of its decoder for the general ones."""
        if group == "specific":
            return teacher.cls_scores[-1], teacher.boxes[-1]
        with torch.no_grad():
            logits, boxes, _ = decode(teacher, zero_content(points, teacher), points)
        return logits[-1], boxes[-1]

    def training_only_pass(self, student, teacher):
        """The extra decoder passes alone: the teacher's on the general points, the student's on both groups,
        forward and backward to the student's encoder memory."""
        s, t = self.inputs(student, teacher)
        s, memory = with_leaf_memory(s)

        def passes() -> None:
            total = memory.new_zeros(())
            for group, points in self.points(t).items():
                self.group_targets(group, points, t)
                logits, boxes, _ = decode(s, zero_content(points, s), points)
                total = total + logits.sum() + boxes.sum()
            total.backward()
            memory.grad = None

        return passes

    def query_loss(self, student: QueryOutputs, teacher: QueryOutputs, batch: DistillBatch) -> dict[str, Tensor]:
        losses = {}
        w_cls, w_l1, w_iou = self.weights
        for group, points in self.points(teacher).items():
            t_logits, t_boxes = self.group_targets(group, points, teacher)
            s_logits, s_boxes, _ = decode(student, zero_content(points, student), points)
            cls, l1, iou = point_losses(s_logits, s_boxes, t_logits.detach(), t_boxes.detach(), self.temperature)
            losses.update({f"{group}_cls": w_cls * cls, f"{group}_l1": w_l1 * l1, f"{group}_iou": w_iou * iou})
        return losses


def zero_content(points: Tensor, side: QueryOutputs) -> Tensor:
    """N x P x D zero content queries for ``points`` on the model of ``side`` (its embedding width)."""
    return points.new_zeros(*points.shape[:2], side.hidden_states.shape[-1])
