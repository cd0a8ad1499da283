"""The teacher is checked before training: its mAP on the run's validation set must reach a floor.

A teacher that did not learn, or did not load as meant (a checkpoint trained on other classes or with another
normalisation), scores about 0 mAP, and a distillation run from it trains for days while distilling noise.
:class:`TeacherCheckHook` evaluates the teacher before the first training iteration and again whenever a stage
switches to another teacher: mmdet's predict path of the teacher model, fed as kdtools feeds it during training
(the student's preprocessing, then the teacher's input adapter and precision), on the first ``max_images`` images
of the run's validation set, scored by a fresh instance of the run's own ``val_evaluator``. Below ``min_map`` the
run stops with :class:`TeacherCheckError`, naming the teacher, the score, the floor and the fixes.

A score is cached per teacher checkpoint (its content), teacher config, input adaptation, precision, validation
set, evaluator, number of images and metric, under ``$KDTOOLS_CACHE/teacher_check`` (default
``~/.cache/kdtools``), so reruns and later runs with the same teacher pay for the evaluation once.

Distributed runs: rank 0 reads the cache and broadcasts what it found, so every rank either skips the evaluation
or evaluates its shard of the images; mmengine's evaluator collects the shards, scores them on rank 0 and
broadcasts the metrics, so every rank reaches the same verdict.

The check is on in every distillation config with a ``val_dataloader`` and a ``val_evaluator``
(:func:`teacher_check_hook`, called by :func:`kdtools.config.expand_distill_config`); ``teacher_check=None``
turns it off, which is also the switch for a feature whose teacher is not meant to be trained yet.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Any

from mmengine.config import Config
from mmengine.dataset import DefaultSampler
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator import Evaluator
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from kdtools.detectors.teacher import Teacher, load_model_config, resolve_checkpoint

# COCO-style mAP (0-1): a randomly initialised or mis-loaded teacher scores ~0.000, the weakest trained teacher of
# kdtools' studies (the demo's 5-epoch toy teacher) 0.17, mmdet's COCO teachers 0.36 to 0.46. 500 images estimate
# a COCO mAP to about a point, far finer than the floor, and cost seconds on a GPU.
DEFAULTS: dict[str, Any] = dict(min_map=0.05, max_images=500, metric=None)
HASH_CHUNK = 1 << 20


class TeacherCheckError(RuntimeError):
    """The teacher scores below ``teacher_check.min_map`` on the validation set."""


@dataclass
class TeacherScore:
    """A teacher's score: the evaluator's ``metric``, its ``value``, on ``images`` validation images."""

    metric: str
    value: float
    images: int
    cached: bool = False


def teacher_check_hook(cfg: Config) -> dict | None:
    """The ``TeacherCheckHook`` entry for ``cfg``'s ``teacher_check`` (unset: the defaults), or None when
    ``teacher_check=None`` or when it is unset and the run has no validation to measure the teacher on."""
    settings = cfg.get("teacher_check", {})
    if settings is None:
        return None
    if not (cfg.get("val_dataloader") and cfg.get("val_evaluator")):
        if "teacher_check" in cfg:
            raise ValueError("teacher_check evaluates the teacher on the run's val_dataloader with its val_evaluator, "
                             "and this config has none: give both, or set teacher_check=None.")
        return None
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown teacher_check keys {unknown}; allowed: {sorted(DEFAULTS)} "
                         "(or teacher_check=None to turn the check off).")
    return dict(type="TeacherCheckHook", **{**DEFAULTS, **settings})


def cache_root() -> str:
    """kdtools' cache directory: ``$KDTOOLS_CACHE``, default ``~/.cache/kdtools`` (as tools/setup_env.sh)."""
    return os.environ.get("KDTOOLS_CACHE") or osp.join(osp.expanduser("~"), ".cache", "kdtools")


def file_digest(path: str) -> str:
    """The sha256 of a file's content: the checkpoint's identity wherever it is copied to."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(teacher: Teacher, dataset_cfg: Any, evaluator_cfg: Any, images: int, metric: str | None) -> str:
    """What a teacher's score depends on, hashed: checkpoint content, teacher model config, the input adaptation
    and precision it runs with, the validation set and evaluator configs, the number of images and the metric."""
    spec, adapter = teacher.spec, teacher.input_adapter
    parts = dict(
        checkpoint=file_digest(resolve_checkpoint(spec["config"], spec["checkpoint"])),
        model=load_model_config(spec["config"], spec.get("cfg_options")).to_dict(),
        adapter=[adapter.order, adapter.scale.flatten().tolist(), adapter.shift.flatten().tolist()],
        half=teacher.half, dataset=dataset_cfg, evaluator=evaluator_cfg, images=images, metric=metric)
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def read_cached(key: str) -> TeacherScore | None:
    path = osp.join(cache_root(), "teacher_check", f"{key}.json")
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return TeacherScore(**{**json.load(f), "cached": True})


def write_cached(key: str, score: TeacherScore) -> None:
    """Store ``score`` under ``key``; written to a temporary file and renamed, so readers never see half a file."""
    folder = osp.join(cache_root(), "teacher_check")
    os.makedirs(folder, exist_ok=True)
    temporary = osp.join(folder, f"{key}.{os.getpid()}.tmp")
    with open(temporary, "w") as f:
        json.dump({k: v for k, v in asdict(score).items() if k != "cached"}, f)
    os.replace(temporary, osp.join(folder, f"{key}.json"))


def first_images(dataset: Dataset, max_images: int | None) -> Dataset:
    """The first ``max_images`` items of ``dataset`` (all when None or when it has no more)."""
    if max_images is None or max_images >= len(dataset):
        return dataset
    return Subset(dataset, range(max_images))


def check_loader(val_loader: DataLoader, dataset: Dataset) -> DataLoader:
    """A one-pass loader over ``dataset`` built like the validation loader, sharded over ranks (DefaultSampler)."""
    return DataLoader(dataset, batch_size=val_loader.batch_size, sampler=DefaultSampler(dataset, shuffle=False),
                      collate_fn=val_loader.collate_fn, num_workers=val_loader.num_workers)


def restrict_to_images(evaluator: Evaluator, full: Dataset, images: int) -> None:
    """Score only the first ``images`` images of ``full``: a metric that reads its ground truth from an annotation
    file (CocoMetric, LVISMetric with ``ann_file``) would otherwise count every image of the file as missed."""
    by_image = [metric for metric in evaluator.metrics if hasattr(metric, "img_ids")]
    ids = [full.get_data_info(i)["img_id"] for i in range(images)] if by_image else []
    for metric in by_image:
        metric.img_ids = ids


def evaluate_teacher(teacher: Teacher, preprocessor: nn.Module, loader: DataLoader,
                     evaluator: Evaluator) -> dict[str, float]:
    """The evaluator's metrics of the teacher's predictions on every batch of ``loader``, each batch prepared by
    the student's ``preprocessor`` as for training."""
    for batch in loader:
        data = preprocessor(batch, False)
        evaluator.process(data_samples=teacher.predict(data["inputs"], data["data_samples"]), data_batch=batch)
    return evaluator.evaluate(len(loader.dataset))


def pick_metric(metrics: dict[str, float], metric: str | None) -> tuple[str, float]:
    """``metric`` of the evaluator's results; None: the first whose name ends in 'mAP' (COCO: coco/bbox_mAP)."""
    if not metrics:  # CocoMetric reports nothing when there is no detection on any image
        return f"{metric or 'mAP'} (no detection on any image)", 0.0
    name = metric or next((key for key in metrics if key.endswith("mAP")), None)
    if name not in metrics:
        wanted = f"teacher_check.metric {metric!r}" if metric else "A metric ending in 'mAP'"
        raise KeyError(f"{wanted} is not among the evaluator's metrics {sorted(metrics)}: set teacher_check.metric "
                       "to the one to hold the teacher to.")
    return name, float(metrics[name])


def describe_teacher(spec: dict) -> str:
    config = spec["config"] if isinstance(spec["config"], str) else f"an inline {spec['config'].get('type')} config"
    return f"config {config}, checkpoint {spec['checkpoint']}"


def failure_message(spec: dict, score: TeacherScore, min_map: float, classes: tuple[str, ...]) -> str:
    names = ", ".join(classes[:8]) + (", ..." if len(classes) > 8 else "")
    return (
        f"Teacher check failed: the teacher ({describe_teacher(spec)}) scores {score.metric} = {score.value:.4f} on "
        f"{score.images} validation images, below the floor teacher_check.min_map = {min_map}. Distilling from it "
        "would teach the student noise. Check that the checkpoint is the one trained with this teacher config, on "
        f"this data set's {len(classes)} classes ({names}) in this order; or lower teacher_check.min_map (in the "
        "evaluator's units, e.g. COCO mAP 0-1); or turn the check off with teacher_check=None."
    )


@HOOKS.register_module()
class TeacherCheckHook(Hook):
    """Stops a distillation run whose teacher scores below ``min_map`` on the validation set.

    Args:
        min_map: the floor, in the evaluator's units (CocoMetric's ``bbox_mAP``: 0-1). The default 0.05 is far
            below any teacher worth distilling (the demo's toy teacher after 5 epochs: 0.17) and far above a
            randomly initialised or mis-loaded one (~0.000).
        max_images: evaluate on the first this many validation images (None: all); 500 by default.
        metric: the evaluator's metric to hold the teacher to; None: the first ending in 'mAP'.
    """

    priority = "HIGH"  # after StageHook (VERY_HIGH), which loads the teacher of the coming epoch's stage

    def __init__(self, min_map: float = DEFAULTS["min_map"], max_images: int | None = DEFAULTS["max_images"],
                 metric: str | None = DEFAULTS["metric"]) -> None:
        self.min_map = min_map
        self.max_images = max_images
        self.metric = metric
        self.checked: list[dict] = []  # the teacher specs checked in this run, each once
        self.scores: list[TeacherScore] = []

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        teacher = model.teacher
        if teacher is None or teacher.spec in self.checked:
            return
        spec = teacher.spec
        if not teacher.checked:
            runner.logger.info(f"Teacher check: skipped, {type(teacher).__name__} is not meant to score (a control).")
            self.checked.append(spec)
            return
        if runner.val_loop is None:
            raise ValueError("TeacherCheckHook evaluates the teacher on the run's validation set, and this run has "
                             "none: give val_dataloader, val_evaluator and val_cfg, or set teacher_check=None.")
        full = runner.val_loop.dataloader.dataset
        score = self.score(runner, model.teacher, model.data_preprocessor, full)
        runner.logger.info(
            f"Teacher check: {score.metric} = {score.value:.4f} on {score.images} validation images"
            f"{' (cached)' if score.cached else ''}, floor {self.min_map}: teacher {describe_teacher(spec)}")
        self.checked.append(spec)
        self.scores.append(score)
        if score.value < self.min_map:
            raise TeacherCheckError(failure_message(spec, score, self.min_map, tuple(full.metainfo.get("classes", ()))))

    def score(self, runner, teacher: Teacher, preprocessor: nn.Module, full: Dataset) -> TeacherScore:
        """The teacher's score from the cache (rank 0 reads it for all), else evaluated on every rank's shard."""
        dataset = first_images(full, self.max_images)
        images = len(dataset)
        key = cache_key(teacher, runner.cfg.get("val_dataloader", {}).get("dataset"), runner.cfg.get("val_evaluator"),
                        images, self.metric) if is_main_process() else None
        found = [read_cached(key) if key else None]
        broadcast_object_list(found)
        if found[0] is not None:
            return found[0]
        evaluator = runner.build_evaluator(copy.deepcopy(runner.cfg.val_evaluator))
        evaluator.dataset_meta = full.metainfo
        if images < len(full):
            restrict_to_images(evaluator, full, images)
        metrics = evaluate_teacher(teacher, preprocessor, check_loader(runner.val_loop.dataloader, dataset), evaluator)
        score = TeacherScore(*pick_metric(metrics, self.metric), images)
        if key:
            write_cached(key, score)
        return score
