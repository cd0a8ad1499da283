"""Control teachers: knowledge sources that keep only one kind of what a teacher knows.

A gain from distillation can come from the teacher's knowledge or from the regularisation any extra loss
brings (a teacher that failed to load gives "the baseline plus noise"). Tang et al., "Understanding and
Improving Knowledge Distillation" (2020), split what a teacher gives into universe knowledge (label smoothing),
domain knowledge (how classes relate) and instance-specific knowledge. A control replaces the teacher of any
distillation config (``teacher_control='shuffled'`` or ``dict(type='shuffled', seed=1)``); the distillers do
not change. Trained against the student and the real teacher (``tools/results.py --study controls``), each
control says how much of the gain its kind of knowledge explains.

- ``'random'``: the teacher's architecture randomly initialised (``seed``), no checkpoint read and no pretrained
  weights loaded: what distilling an untrained network gives (regularisation, no knowledge).
- ``'shuffled'``: the real teacher, each image given the records of another image of the batch (every tensor
  of every record permuted along the batch by a random derangement, drawn each step from ``seed``): the
  teacher's knowledge, of the wrong instances. Needs batches of at least 2 images.
- ``'class_prior'`` (dense heads of GFL type): the real teacher runs; every location's head outputs are
  replaced by the teacher's mean distribution over the locations assigned its class (background a class of its
  own): class probabilities (sigmoid) and box-side distributions (softmax over the bins), averaged over every
  location of training so far, this batch included: domain knowledge only.
- ``'label_smoothing'`` (dense heads of GFL type): every location's head outputs are replaced by its label
  smoothed by ``epsilon``: class probabilities ``(1 - eps) * onehot + eps / K`` (``eps / K`` for background),
  and at positives the two-hot distribution of the ground-truth distance per side (as GFL's distribution loss
  targets it) smoothed as ``(1 - eps) * twohot + eps / bins`` (uniform elsewhere): universe knowledge only.

The labels are those the teacher head's own assigner gives the batch's ground truth (``get_targets``; for the
anchor-based assigners of GFL, ATSS, the student's). The two replacing controls keep the rest of the teacher's
records (intermediate head features), so CrossKD still crosses the student's features through the teacher's
frozen layers and only its targets change. The class-prior means start over when a run resumes.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.structures import DetDataSample
from torch import Tensor, nn

from kdtools.detectors.taps import CALL_SUFFIX, Records, map_tensors
from kdtools.detectors.teacher import Teacher, build_model
from kdtools.distillers.base import DistillBatch
from kdtools.modules.dense_heads import DenseTargets, assigned_targets, flatten_levels, unflatten_levels

EPS = 1e-6


def control_spec(value: str | dict | None) -> dict | None:
    """``teacher_control`` as ``dict(type=..., **options)`` (None: the real teacher), its type checked."""
    if value is None:
        return None
    spec = dict(type=value) if isinstance(value, str) else dict(value)
    if spec.get("type") not in CONTROLS:
        raise ValueError(f"teacher_control={value!r}: the controls are {sorted(CONTROLS)} (or None for the real "
                         "teacher), e.g. teacher_control='shuffled' or dict(type='random', seed=1).")
    return spec


def build_control(control: dict, spec: dict, taps: Sequence[str], student_preprocessor: dict, half: bool,
                  device: torch.device | str) -> Teacher:
    """The control ``control`` (from :func:`control_spec`) in place of the teacher ``spec``."""
    options = {k: v for k, v in control.items() if k != "type"}
    return CONTROLS[control["type"]](spec, taps, student_preprocessor, half, device, **options)


def without_pretrained(cfg: Any) -> Any:
    """A model config with every ``init_cfg=dict(type='Pretrained', ...)`` left out (nothing loaded)."""
    if isinstance(cfg, dict):
        return {k: without_pretrained(v) for k, v in cfg.items()
                if not (k == "init_cfg" and isinstance(v, dict) and v.get("type") == "Pretrained")}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(without_pretrained(v) for v in cfg)
    return cfg


class RandomTeacher(Teacher):
    """The teacher's architecture, randomly initialised with ``seed``; its checkpoint is not read."""

    checked = False  # an untrained network is what the teacher check rejects

    def __init__(self, spec: dict, taps: Sequence[str], student_preprocessor: dict, half: bool = False,
                 device: torch.device | str = "cpu", seed: int = 0) -> None:
        from kdtools.detectors.teacher import load_model_config

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            config = load_model_config(spec["config"], spec.get("cfg_options")).to_dict()
            model = build_model(without_pretrained(config))
            model.init_weights()
        super().__init__(spec, taps, student_preprocessor, half, device, model=model)


def derangement(n: int, generator: torch.Generator) -> Tensor:
    """A random permutation of ``range(n)`` with no fixed point: a random cycle through all ``n``."""
    order = torch.randperm(n, generator=generator)
    perm = torch.empty(n, dtype=torch.long)
    perm[order] = order.roll(-1)
    return perm


class ShuffledTeacher(Teacher):
    """The real teacher's records, each image given those of another image of the batch."""

    def __init__(self, spec: dict, taps: Sequence[str], student_preprocessor: dict, half: bool = False,
                 device: torch.device | str = "cpu", seed: int = 0) -> None:
        calls = [tap for tap in taps if tap.endswith(CALL_SUFFIX)]
        if calls:
            raise ValueError(f"teacher_control='shuffled' permutes batch-first records; the calls recorded for {calls} "
                             "(a query distiller's) are not batch-first. Use 'random' with query distillers.")
        super().__init__(spec, taps, student_preprocessor, half, device)
        self.generator = torch.Generator().manual_seed(seed)
        self.last_permutation: Tensor | None = None

    def records(self, inputs: Tensor, data_samples: list[DetDataSample], batch: DistillBatch | None = None) -> Records:
        n = inputs.shape[0]
        if n < 2:
            raise ValueError("teacher_control='shuffled' gives each image the records of another image of the batch: "
                             "it needs batches of at least 2 images (train_dataloader.batch_size >= 2).")
        records = super().records(inputs, data_samples, batch)
        perm = derangement(n, self.generator).to(inputs.device)
        self.last_permutation = perm
        calls = {tap: map_tensors(lambda t: t[perm], values) for tap, values in records.calls.items()}
        return Records(calls, records.modules)


class HeadControl(Teacher):
    """A control that replaces the outputs of the teacher's dense heads by targets made from their assignment."""

    def __init__(self, spec: dict, taps: Sequence[str], student_preprocessor: dict, half: bool = False,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(spec, taps, student_preprocessor, half, device)
        self.heads = [tap for tap, module in self.taps.modules.items() if isinstance(module, BaseDenseHead)]
        name = type(self).__name__
        if not self.heads:
            raise ValueError(f"teacher_control {name} replaces dense-head outputs and no distiller of this config "
                             "reads a head: use it with a head distiller (LD, CrossKD, BCKD), or use 'random' or "
                             "'shuffled'.")
        for tap in self.heads:
            if not hasattr(self.taps.modules[tap], "integral"):
                raise ValueError(f"teacher_control {name} makes box distributions and needs a GFL-type head; the "
                                 f"teacher's {tap!r} is {type(self.taps.modules[tap]).__name__}.")

    def records(self, inputs: Tensor, data_samples: list[DetDataSample], batch: DistillBatch | None = None) -> Records:
        if batch is None:
            raise ValueError(f"{type(self).__name__} reads the batch's ground truth: call records(..., batch).")
        records = super().records(inputs, data_samples, batch)
        calls = dict(records.calls)
        for tap in self.heads:
            head = records.head(tap)
            targets = assigned_targets(head.head, head.cls_scores, batch)
            cls, box = self.replaced(flatten_levels(head.cls_scores), flatten_levels(head.bbox_preds), head.head,
                                     targets)
            output = (unflatten_levels(cls, head.cls_scores), unflatten_levels(box, head.bbox_preds), *head.others)
            calls[tap] = [*calls[tap][:-1], output]
        return Records(calls, records.modules)

    def replaced(self, cls: Tensor, box: Tensor, head: nn.Module, targets: DenseTargets) -> tuple[Tensor, Tensor]:
        """The class logits and box-bin logits (rows x K, rows x 4 bins) that replace the teacher's."""
        raise NotImplementedError


def class_of_rows(targets: DenseTargets) -> Tensor:
    """Per row, its assigned class, ``num_classes`` for background."""
    return torch.where(targets.positive, targets.labels, torch.full_like(targets.labels, targets.num_classes))


def logits_of(probs: Tensor) -> Tensor:
    """Sigmoid logits of probabilities."""
    probs = probs.clamp(EPS, 1 - EPS)
    return probs.log() - (1 - probs).log()


class ClassPriorTeacher(HeadControl):
    """Every location gets the teacher's mean distribution of its assigned class (domain knowledge only)."""

    def __init__(self, spec: dict, taps: Sequence[str], student_preprocessor: dict, half: bool = False,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(spec, taps, student_preprocessor, half, device)
        self.sums: dict[int, tuple[Tensor, Tensor, Tensor]] = {}  # per head: class prob sums, bin prob sums, counts

    def replaced(self, cls: Tensor, box: Tensor, head: nn.Module, targets: DenseTargets) -> tuple[Tensor, Tensor]:
        classes = class_of_rows(targets)
        bins = box.reshape(len(box), 4, -1).softmax(-1)
        counted = targets.label_weights > 0
        key = id(head)
        if key not in self.sums:
            groups = targets.num_classes + 1
            self.sums[key] = (cls.new_zeros(groups, cls.shape[1]), cls.new_zeros(groups, *bins.shape[1:]),
                              cls.new_zeros(groups))
        cls_sum, bin_sum, count = self.sums[key]
        cls_sum.index_add_(0, classes[counted], cls.sigmoid()[counted])
        bin_sum.index_add_(0, classes[counted], bins[counted])
        count.index_add_(0, classes[counted], torch.ones_like(classes[counted], dtype=count.dtype))
        seen = count.clamp(min=1)
        cls_mean, bin_mean = cls_sum / seen[:, None], bin_sum / seen[:, None, None]
        return logits_of(cls_mean[classes]), bin_mean[classes].clamp(min=EPS).log().reshape(len(box), -1)

    def class_means(self, head: nn.Module) -> tuple[Tensor, Tensor]:
        """The running means of ``head``'s class probabilities and bin distributions, one row per class."""
        cls_sum, bin_sum, count = self.sums[id(head)]
        seen = count.clamp(min=1)
        return cls_sum / seen[:, None], bin_sum / seen[:, None, None]


class LabelSmoothingTeacher(HeadControl):
    """Every location gets its label smoothed by ``epsilon`` (universe knowledge only)."""

    def __init__(self, spec: dict, taps: Sequence[str], student_preprocessor: dict, half: bool = False,
                 device: torch.device | str = "cpu", epsilon: float = 0.1) -> None:
        if not 0 < epsilon < 1:
            raise ValueError(f"label_smoothing epsilon must be in (0, 1), got {epsilon}.")
        super().__init__(spec, taps, student_preprocessor, half, device)
        self.epsilon = epsilon

    def replaced(self, cls: Tensor, box: Tensor, head: nn.Module, targets: DenseTargets) -> tuple[Tensor, Tensor]:
        eps, k = self.epsilon, targets.num_classes
        onehot = F.one_hot(class_of_rows(targets), k + 1)[:, :k].to(cls.dtype)
        probs = (1 - eps) * onehot + eps / k
        bins = box.shape[1] // 4
        dist = box.new_full((len(box), 4, bins), 1.0 / bins)
        pos = targets.positive
        if pos.any():
            centres = head.anchor_center(targets.anchors[pos]) / targets.strides[pos, None]
            sides = head.bbox_coder.encode(centres, targets.bbox_targets[pos] / targets.strides[pos, None],
                                           bins - 1)
            dist[pos] = (1 - eps) * two_hot(sides, bins) + eps / bins
        return logits_of(probs), dist.log().reshape(len(box), -1)


def two_hot(distances: Tensor, bins: int) -> Tensor:
    """Per side, the distribution over integer bins whose expectation is the distance (GFL's DFL target)."""
    left = distances.floor().long().clamp(max=bins - 2)
    right_weight = distances - left
    out = distances.new_zeros(*distances.shape, bins)
    out.scatter_(-1, left[..., None], (1 - right_weight)[..., None])
    out.scatter_add_(-1, (left + 1)[..., None], right_weight[..., None])
    return out


CONTROLS: dict[str, type[Teacher]] = {
    "random": RandomTeacher,
    "shuffled": ShuffledTeacher,
    "class_prior": ClassPriorTeacher,
    "label_smoothing": LabelSmoothingTeacher,
}
HEAD_CONTROLS = ("class_prior", "label_smoothing")  # they replace dense-head outputs
