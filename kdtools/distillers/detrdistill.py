"""DETRDistill: Hungarian-matched logits distillation and target-aware feature distillation for DETRs.

Chang et al., "DETRDistill: A Universal Knowledge Distillation Framework for DETR-families", ICCV 2023.
Follows the authors' code (BIVLab-USTC/DETRDistill: distill_deformable_detr_head.py, distiller.py and the
config deformdetr_r101_2x_distill_r50_LayerbyLayer_CL_teachergroup.py), on the matching queries of each
decoder layer l of the student and layer m(l) of the teacher (``layer_map``; the same index by default).

Logits distillation. Every teacher query of layer m(l) is a soft target: p = sigmoid(teacher logits), box
b^T. Per image, student and teacher queries are matched by the Hungarian algorithm on::

    C_ij = sum_k [ -p_jk log s_ik - (1 - p_jk) log(1 - s_ik) ]       (soft BCE summed over the K classes)
           + 5 |b^S_i - b^T_j|_1  (normalised cx, cy, w, h)  - 2 GIoU(b^S_i, b^T_j)  (pixel x1, y1, x2, y2)

with s = sigmoid(student logits). With M matched pairs in the batch::

    L_cls = sum over queries and classes of BCE(s_i, target_i) / M     target_i = p_j(i), or 0 if unmatched
    L_l1  = 5 * sum over matched pairs of |b^S_i - b^T_j|_1 / M
    L_iou = 2 * sum over matched pairs of (1 - GIoU) / M

one set per student layer (``loss_detrdistill_{cls,l1,iou}_d<l>``), summed, not averaged, over layers.
With equal query counts every student query is matched (the authors' setting); kdtools gives a student
query left unmatched (more student than teacher queries) the all-zero target.

Target-aware feature distillation. Per teacher layer m(l) and image, the top k = 100 (query, class) pairs
by teacher score p; each weighs w_n = p_n * max IoU of its box with the image's GT boxes (p_n alone
without GT). With q_n the teacher's decoder embedding of that query (layer m(l)) and F^T, F^S the neck
levels::

    A(h, w) = max(sum_n w_n cos(q_n, F^T(h, w)), 0.01),   A <- A / max_hw A   (per image and level)
    L_feat  = sum over levels of mean((A F^T - A F^S)^2)                  (``loss_detrdistill_feat_d<l>``)

Query-prior assignment (``query_prior_weight`` > 0; off by default). The teacher's matching queries (their
content and initial reference boxes) are decoded by the student's decoder as a group of their own (they attend
to each other only: :func:`kdtools.detectors.queries.decode`), and every student layer's predictions on them
are trained on the ground truth with the student head's own Hungarian matching and losses (focal loss, L1,
GIoU at the head's weights), as the released code's teacher group does (``forward_train_teacher_group``,
which matches with ``loss_single``)::

    L_qpa = query_prior_weight * sum_l L_det(student decoder layer l on the teacher's queries, GT)

(``loss_detrdistill_qpa_{cls,bbox,iou}_d<l>``). It needs a DINO-style decoder (no ``query_pos`` input) and
teacher queries as wide as the student's.

Query contrast (``contrastive_weight`` > 0; off by default). The released code's MoCo-style head
(``MoCoCLHead``, which the paper does not describe): the decoder embeddings of each layer's matched pairs (the
logits distillation's assignment, all images of the batch together) are projected per side (Linear to 512, then
Linear-BN-ReLU-Linear) and L2-normalised to z^S, z^T; each teacher query must pick out its own student query
among all of them::

    L_cl = contrastive_weight * CE(z^T z^S^T / 0.07, identity)       (``loss_detrdistill_cl_d<l>``)

Loss weights: 1 (soft BCE), 5 (L1), 2 (GIoU), 1 (features). The denoising queries never enter.

The released code's published configuration (``configs/toy/detrdistill_released_dino_toy.py``) also turns
on the teacher group and the query contrast at weight 0.2; both are options here, off by default, so that the
default is the paper's two distillation terms.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from kdtools.detectors.queries import QueryOutputs, decode, with_leaf_memory
from kdtools.distillers.base import DistillBatch
from kdtools.distillers.query import QueryDistiller, check_decodable
from kdtools.registry import DISTILLERS


def image_scale(batch: DistillBatch, device: torch.device) -> Tensor:
    """N x 4 (w, h, w, h) of each image: normalised boxes times it are pixel boxes."""
    return torch.tensor([(w, h, w, h) for h, w in batch.img_shapes], dtype=torch.float32, device=device)


def soft_bce_cost(student_logits: Tensor, teacher_probs: Tensor) -> Tensor:
    """Q_s x Q_t: the soft BCE of every student query against every teacher query, summed over classes."""
    pos = F.binary_cross_entropy_with_logits(student_logits, torch.ones_like(student_logits), reduction="none")
    neg = F.binary_cross_entropy_with_logits(student_logits, torch.zeros_like(student_logits), reduction="none")
    return pos @ teacher_probs.T + neg @ (1 - teacher_probs).T


def match_cost(student_logits: Tensor, student_boxes: Tensor, teacher_probs: Tensor, teacher_boxes: Tensor,
               scale: Tensor, weights: tuple[float, float, float]) -> Tensor:
    """The Q_s x Q_t matching cost of one image (the module docstring's C)."""
    w_cls, w_l1, w_iou = weights
    l1 = torch.cdist(student_boxes, teacher_boxes, p=1)
    giou = bbox_overlaps(bbox_cxcywh_to_xyxy(student_boxes) * scale, bbox_cxcywh_to_xyxy(teacher_boxes) * scale,
                         mode="giou")
    return w_cls * soft_bce_cost(student_logits, teacher_probs) + w_l1 * l1 - w_iou * giou


def teacher_queries(teacher: QueryOutputs) -> tuple[Tensor, Tensor]:
    """(N x Q x D content, N x Q x 4 initial reference boxes) of the teacher's matching queries, detached."""
    query = teacher.decoder_inputs["query"][:, teacher.num_denoising:]
    return query.detach(), teacher.references[0].detach()


class Pairs(NamedTuple):
    """Matched (student, teacher) queries of one layer over the batch: image, student and teacher indices."""

    image: Tensor
    student: Tensor
    teacher: Tensor


class QueryContrast(nn.Module):
    """The released code's contrastive head: both sides' query embeddings projected and L2-normalised; InfoNCE of
    each teacher query over every student query given, its matched one the positive."""

    def __init__(self, student_dims: int, teacher_dims: int, channels: int = 512, temperature: float = 0.07) -> None:
        super().__init__()
        self.student = projection(student_dims, channels)
        self.teacher = projection(teacher_dims, channels)
        self.temperature = temperature

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """``student``, ``teacher``: P x D embeddings of P matched pairs, row by row."""
        s, t = F.normalize(self.student(student), dim=1), F.normalize(self.teacher(teacher), dim=1)
        logits = t @ s.T / self.temperature
        return F.cross_entropy(logits, torch.arange(len(t), device=t.device))


def projection(dims: int, channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dims, channels), nn.Linear(channels, channels), nn.BatchNorm1d(channels),
                         nn.ReLU(inplace=True), nn.Linear(channels, channels))


def hungarian(cost: Tensor) -> tuple[Tensor, Tensor]:
    """(student indices, teacher indices) of the minimum-cost assignment (scipy's linear_sum_assignment)."""
    rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
    device = cost.device
    return (torch.as_tensor(rows, dtype=torch.long, device=device),
            torch.as_tensor(cols, dtype=torch.long, device=device))


@DISTILLERS.register_module()
class DETRDistill(QueryDistiller):
    """Hungarian-matched soft-label distillation on every decoder layer, plus target-aware feature distillation.

    Args:
        cls_weight: weight of the soft BCE (and its matching cost).
        l1_weight: weight of the box L1 (and its matching cost).
        iou_weight: weight of the GIoU loss (and its matching cost).
        feature_weight: weight of the target-aware feature loss; 0 leaves the neck out.
        topk: (query, class) pairs of the teacher that shape the feature mask.
        neck: module path of both detectors' neck (the feature levels).
        teacher_levels: the teacher neck level of each student level (e.g. [1, 2, 3, 4] for a 5-scale teacher
            of a 4-scale student); default the same index. Checked at build time: paired levels have equal
            shapes.
        query_prior_weight: weight of query-prior assignment (the teacher's queries decoded by the student,
            trained on GT); 0 leaves it out.
        contrastive_weight: weight of the query contrast on matched decoder embeddings; 0 leaves it out.
        contrastive_channels: width of the query contrast's projections.
        temperature: the query contrast's softmax temperature.
        **kwargs: :class:`QueryDistiller` arguments.
    """

    settable = (*QueryDistiller.settable, "feature_weight", "query_prior_weight")

    def __init__(self, cls_weight: float = 1.0, l1_weight: float = 5.0, iou_weight: float = 2.0,
                 feature_weight: float = 1.0, topk: int = 100, neck: str = "neck",
                 teacher_levels: list[int] | None = None, query_prior_weight: float = 0.0,
                 contrastive_weight: float = 0.0, contrastive_channels: int = 512, temperature: float = 0.07,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.teacher_levels = list(teacher_levels) if teacher_levels is not None else None
        self.weights = (float(cls_weight), float(l1_weight), float(iou_weight))
        self.feature_weight = float(feature_weight)
        self.topk = int(topk)
        self.feature_tap = neck if feature_weight else None
        self.query_prior_weight = float(query_prior_weight)
        self.contrastive_weight = float(contrastive_weight)
        self.contrast_settings = dict(channels=int(contrastive_channels), temperature=float(temperature))
        self.contrast: QueryContrast | None = None  # built for the pair's embedding widths (check_pair)

    def check_pair(self, student, teacher) -> None:
        """Also: each student neck level has a teacher level of the same shape (``teacher_levels``); with
        query-prior assignment, the student's decoder can decode the teacher's queries; with query contrast, its
        head is built (or, for a later teacher, fits)."""
        super().check_pair(student, teacher)
        if self.query_prior_weight:
            self.check_query_prior(student, teacher)
        if self.contrastive_weight:
            self.build_contrast(*self.inputs(student, teacher))
        if not self.feature_tap:
            return
        s_levels, t_levels = student.levels([self.feature_tap]), teacher.levels([self.feature_tap])
        self.teacher_levels = self.teacher_levels or list(range(len(s_levels)))
        pairs = [(tuple(s.shape[1:]), tuple(t_levels[j].shape[1:]) if j < len(t_levels) else None)
                 for s, j in zip(s_levels, self.teacher_levels)]
        if len(self.teacher_levels) != len(s_levels) or any(s != t for s, t in pairs):
            raise ValueError(
                f"DETRDistill {self.name!r}: student neck levels (C x H x W) {[s for s, _ in pairs]} against teacher "
                f"levels {self.teacher_levels} {[t for _, t in pairs]} of {[tuple(t.shape[1:]) for t in t_levels]}. "
                "Give teacher_levels=[...], the teacher level of each student level, of equal stride and channels.")

    def check_query_prior(self, student, teacher) -> None:
        check_decodable(self, student, "student")
        s_outputs, t_outputs = self.inputs(student, teacher)
        s, t = s_outputs.hidden_states.shape[-1], teacher_queries(t_outputs)[0].shape[-1]
        if s != t:
            raise ValueError(
                f"DETRDistill {self.name!r}: query-prior assignment decodes the teacher's {t}-wide queries in the "
                f"student's {s}-wide decoder. Give both the same embed_dims, or query_prior_weight=0.")

    def build_contrast(self, student: QueryOutputs, teacher: QueryOutputs) -> None:
        dims = student.hidden_states.shape[-1], teacher.hidden_states.shape[-1]
        if self.contrast is None:
            self.contrast = QueryContrast(*dims, **self.contrast_settings)
            return
        built = self.contrast.student[0].in_features, self.contrast.teacher[0].in_features
        if built != dims:
            raise ValueError(f"DETRDistill {self.name!r}: its query contrast was built for (student, teacher) "
                             f"embeddings {built} wide; this teacher's pair is {dims}. Give every teacher of the "
                             "run the same embed_dims.")

    def training_only_pass(self, student, teacher):
        """With query-prior assignment, its extra pass alone: the student's decoder and head on the teacher's
        queries, forward and backward to the student's encoder memory. None without."""
        if not self.query_prior_weight:
            return None
        s, t = self.inputs(student, teacher)
        s, memory = with_leaf_memory(s)

        def query_prior_pass() -> None:
            logits, boxes, _ = decode(s, *teacher_queries(t))
            (logits.sum() + boxes.sum()).backward()
            memory.grad = None

        return query_prior_pass

    def query_loss(self, student: QueryOutputs, teacher: QueryOutputs, batch: DistillBatch) -> dict[str, Tensor]:
        scale = image_scale(batch, student.boxes.device)
        levels = self.level_pairs(student, teacher) if self.feature_tap and self.feature_weight else []
        losses = {}
        for layer, t_layer in enumerate(self.layer_map):
            pairs = self.assign(student, teacher, layer, t_layer, scale)
            for key, value in self.logits_loss(student, teacher, layer, t_layer, pairs, scale).items():
                losses[f"{key}_d{layer}"] = value
            if self.contrastive_weight:
                losses[f"cl_d{layer}"] = self.contrastive_weight * self.contrast(
                    student.hidden_states[layer][pairs.image, pairs.student].float(),
                    teacher.hidden_states[t_layer][pairs.image, pairs.teacher].float())
            if levels:
                losses[f"feat_d{layer}"] = self.feature_weight * self.feature_loss(teacher, t_layer, levels, batch,
                                                                                   scale)
        if self.query_prior_weight:
            losses.update(self.query_prior_loss(student, teacher, batch))
        return losses

    def query_prior_loss(self, student: QueryOutputs, teacher: QueryOutputs, batch: DistillBatch
                         ) -> dict[str, Tensor]:
        """L_qpa: the student's decoder on the teacher's matching queries, each layer against the GT."""
        logits, boxes, _ = decode(student, *teacher_queries(teacher))
        gt = [InstanceData(bboxes=b, labels=labels) for b, labels in zip(batch.gt_bboxes, batch.gt_labels)]
        losses = {}
        for layer in range(len(logits)):
            terms = student.head.loss_by_feat_single(logits[layer], boxes[layer], gt, batch.img_metas)
            for key, value in zip(("cls", "bbox", "iou"), terms):
                losses[f"qpa_{key}_d{layer}"] = self.query_prior_weight * value.reshape(())  # mmdet: cls is 1-d
        return losses

    def level_pairs(self, student: QueryOutputs, teacher: QueryOutputs) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Per student neck level (fp32): (F^S, F^T, F^T normalised over channels), the same for every layer."""
        pairs = []
        for s, j in zip(student.features, self.teacher_levels):
            t = teacher.features[j].float()
            pairs.append((s.float(), t, F.normalize(t, dim=1)))
        return pairs

    def assign(self, student: QueryOutputs, teacher: QueryOutputs, layer: int, t_layer: int, scale: Tensor) -> Pairs:
        """The Hungarian matching of one student layer with its teacher layer, one assignment per image."""
        s_logits, s_boxes = student.cls_scores[layer], student.boxes[layer]
        t_probs, t_boxes = teacher.cls_scores[t_layer].sigmoid(), teacher.boxes[t_layer]
        pairs = [hungarian(match_cost(s_logits[i], s_boxes[i], t_probs[i], t_boxes[i], scale[i], self.weights))
                 for i in range(s_logits.shape[0])]
        image = torch.cat([torch.full_like(rows, i) for i, (rows, _) in enumerate(pairs)])
        return Pairs(image, torch.cat([rows for rows, _ in pairs]), torch.cat([cols for _, cols in pairs]))

    def logits_loss(self, student: QueryOutputs, teacher: QueryOutputs, layer: int, t_layer: int, pairs: Pairs,
                    scale: Tensor) -> dict[str, Tensor]:
        """L_cls, L_l1, L_iou of one student layer against its teacher layer, on its matching ``pairs``."""
        s_logits, s_boxes = student.cls_scores[layer], student.boxes[layer]
        t_probs, t_boxes = teacher.cls_scores[t_layer].sigmoid(), teacher.boxes[t_layer]
        image, rows, cols = pairs
        targets = torch.zeros_like(s_logits)
        targets[image, rows] = t_probs[image, cols]
        count = max(len(rows), 1)
        w_cls, w_l1, w_iou = self.weights
        bce = F.binary_cross_entropy_with_logits(s_logits, targets, reduction="sum") / count
        s_matched, t_matched = s_boxes[image, rows], t_boxes[image, cols]
        l1 = (s_matched - t_matched).abs().sum() / count
        pixel = scale[image]
        giou = bbox_overlaps(bbox_cxcywh_to_xyxy(s_matched) * pixel, bbox_cxcywh_to_xyxy(t_matched) * pixel,
                             mode="giou", is_aligned=True)
        return {"cls": w_cls * bce, "l1": w_l1 * l1, "iou": w_iou * (1 - giou).sum() / count}

    def query_weights(self, teacher: QueryOutputs, t_layer: int, batch: DistillBatch,
                      scale: Tensor) -> tuple[Tensor, Tensor]:
        """(N x k teacher embeddings of the top-k (query, class) pairs, N x k weights score x max IoU with GT)."""
        probs = teacher.cls_scores[t_layer].sigmoid()
        n, q, k = probs.shape
        scores, index = probs.flatten(1).topk(min(self.topk, q * k), dim=1)
        query = index // k
        boxes = bbox_cxcywh_to_xyxy(teacher.boxes[t_layer].gather(1, query[..., None].expand(-1, -1, 4)))
        weights = []
        for i in range(n):  # each image has its own GT boxes
            gt = batch.gt_bboxes[i].to(boxes)
            overlap = bbox_overlaps(boxes[i] * scale[i], gt).max(dim=1).values if len(gt) else 1.0
            weights.append(scores[i] * overlap)
        embeddings = teacher.hidden_states[t_layer].gather(
            1, query[..., None].expand(-1, -1, teacher.hidden_states.shape[-1]))
        return embeddings, torch.stack(weights)

    def feature_loss(self, teacher: QueryOutputs, t_layer: int, levels: list[tuple[Tensor, Tensor, Tensor]],
                     batch: DistillBatch, scale: Tensor) -> Tensor:
        """L_feat of one teacher layer over every neck level (``levels``: :meth:`level_pairs`)."""
        embeddings, weights = self.query_weights(teacher, t_layer, batch, scale)
        queries = F.normalize(embeddings, dim=-1)
        loss = 0.0
        for s, t, t_normalised in levels:
            similarity = torch.einsum("nqc,nchw->nqhw", queries, t_normalised)
            mask = torch.einsum("nqhw,nq->nhw", similarity, weights).clamp(min=1e-2)
            mask = (mask / mask.flatten(1).max(dim=1).values[:, None, None])[:, None]
            loss = loss + F.mse_loss(mask * t, mask * s)
        return loss
