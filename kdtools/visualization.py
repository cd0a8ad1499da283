"""Pictures of what distillation sees: FPN activations, teacher attention and each distiller's masks.

Every distiller may expose ``visual_maps(student, teacher, batch, index) -> {name: N x H x W}`` (the
masks, weights or errors it uses on level ``index``); this module draws them next to the image and the
student's and teacher's mean absolute activations, each panel with its colour bar and the figure with a caption
that says what each panel shows.
"""
from __future__ import annotations

import os.path as osp
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from torch import Tensor

from kdtools.config import expand_distill_config, read_config, set_teacher_checkpoint
from kdtools.detectors.taps import HeadOutputs
from kdtools.distillers.base import BaseDistiller, DistillBatch
from kdtools.modules.attention import spatial_attention

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ATTENTION_TEMPERATURE = 0.5
PANELS = {  # what each panel shows, for the figure's caption
    "image": "the validation image, its ground-truth boxes in green; one row per level",
    "student |F|": "mean over channels of the student's absolute feature at the level (after the connector)",
    "teacher |F|": "mean over channels of the teacher's absolute feature at the level",
    "teacher attention": f"softmax over positions of the teacher's channel-mean |F| / {ATTENTION_TEMPERATURE}, "
                         "times the number of positions (FGD's spatial attention): 1 is an average position, "
                         "higher ones stand out",
    "student max class prob": "the student head's highest class probability (sigmoid) per location",
    "teacher max class prob": "the teacher head's highest class probability (sigmoid) per location",
}
DISTILLER_PANEL = ("'<distiller>: <map>': a map that distiller computes on the level (a mask, weight or error; "
                   "head distillers: |teacher - student| of the two max class probabilities)")
CAPTION_FONT = 7


def load_distill_model(config: str, teacher_checkpoint: str | None = None, checkpoint: str | None = None):
    """A DistillDetector in eval mode, optionally with trained weights (a kdtools training checkpoint)."""
    from mmdet.registry import MODELS

    from kdtools.checkpoint import load_checkpoint_file, state_dict_of

    cfg = expand_distill_config(set_teacher_checkpoint(read_config(config), teacher_checkpoint))
    init_default_scope(cfg.get("default_scope", "mmdet"))
    model = MODELS.build(cfg.model)
    model.init_weights()
    if checkpoint:
        model.load_state_dict(state_dict_of(load_checkpoint_file(checkpoint)), strict=True)
    return cfg, model.eval()


def val_batch(cfg: Config, model, index: int):
    """One preprocessed validation image with its ground truth."""
    from mmdet.registry import DATASETS

    from kdtools.training import prepare_data

    prepare_data(cfg)
    dataset_cfg = cfg.val_dataloader.dataset
    dataset = DATASETS.build(dataset_cfg)
    data = model.data_preprocessor(pseudo_collate([dataset[index]]), training=False)
    return data["inputs"], data["data_samples"]


@torch.no_grad()
def collect_maps(model, inputs: Tensor, samples) -> dict[str, dict[str, np.ndarray]]:
    """Per level name: maps of the student, the teacher and every distiller (first image). Feature distillers:
    activations, teacher attention and their own maps per FPN level; head distillers: both heads' highest
    class probability per location and their difference, per head level."""
    student = model.student_records(inputs, samples)
    teacher = model.teacher.records(inputs, samples)
    batch = DistillBatch.from_data_samples(samples, tuple(inputs.shape[-2:]))
    maps: dict[str, dict[str, np.ndarray]] = {}
    for d in model.distillers:
        if not isinstance(d, BaseDistiller):
            add_head_maps(maps, d, *d.inputs(student, teacher))
            continue
        for index, (s, t) in enumerate(d.aligned_levels(*d.inputs(student, teacher))):
            level = maps.setdefault(d.levels[index].name, {})
            level.setdefault("student |F|", _np(s.abs().mean(1)))
            level.setdefault("teacher |F|", _np(t.abs().mean(1)))
            level.setdefault("teacher attention", _np(spatial_attention(t, ATTENTION_TEMPERATURE)))
            for name, value in d.visual_maps(s, t, batch, index).items():
                level[f"{d.name}: {name}"] = _np(value)
    return maps


def add_head_maps(maps: dict[str, dict[str, np.ndarray]], d, student: HeadOutputs, teacher: HeadOutputs) -> None:
    for index, (s, t) in enumerate(zip(student.cls_scores, teacher.cls_scores)):
        s_prob, t_prob = s.sigmoid().amax(1), t.sigmoid().amax(1)
        level = maps.setdefault(f"head level {index}", {})
        level.setdefault("student max class prob", _np(s_prob))
        level.setdefault("teacher max class prob", _np(t_prob))
        level[f"{d.name}: |teacher - student|"] = _np((t_prob - s_prob).abs())


def _np(x: Tensor) -> np.ndarray:
    return x[0].float().cpu().numpy()


def draw(image: np.ndarray, maps: dict[str, dict[str, np.ndarray]], path: str, levels: Sequence[str] | None = None,
         boxes: np.ndarray | None = None, note: str = "") -> None:
    """:func:`figure`, saved as PNG."""
    fig = figure(image, maps, levels, boxes, note)
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure(image: np.ndarray, maps: dict[str, dict[str, np.ndarray]], levels: Sequence[str] | None = None,
           boxes: np.ndarray | None = None, note: str = "") -> Figure:
    """A grid, one row per level: the image then every map, each map with its own colour bar; below, a caption
    that defines the panels, then ``note``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [name for name in maps if levels is None or name in levels]
    if not rows:
        raise ValueError(f"Nothing to draw for levels {list(levels or [])}; the distillers' levels are {list(maps)}.")
    columns = list(dict.fromkeys(k for name in rows for k in maps[name]))
    width = 2.6 * (len(columns) + 1)
    caption = caption_lines(columns, note, int(width * 72 / (0.55 * CAPTION_FONT)))  # glyphs ~0.55 em wide
    caption_height = 0.15 + len(caption) * 1.4 * CAPTION_FONT / 72  # inches, lines 1.4 em apart
    height = 2.3 * len(rows) + caption_height
    fig, axes = plt.subplots(len(rows), len(columns) + 1, figsize=(width, height), squeeze=False)
    for r, level in enumerate(rows):
        axes[r][0].imshow(image)
        for x1, y1, x2, y2 in (boxes if boxes is not None else []):
            axes[r][0].add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="lime", lw=1))
        axes[r][0].set_ylabel(level)
        for c, key in enumerate(columns, start=1):
            if key in maps[level]:
                colour_bar = fig.colorbar(axes[r][c].imshow(maps[level][key], cmap="viridis"), ax=axes[r][c],
                                          fraction=0.046, pad=0.03)
                colour_bar.ax.tick_params(labelsize=5)
            if r == 0:
                axes[r][c].set_title(key, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.text(0.01, 0.05 / height, "\n".join(caption), fontsize=CAPTION_FONT, ha="left", va="bottom")
    fig.tight_layout(rect=(0, caption_height / height, 1, 1))
    return fig


def caption_lines(columns: Sequence[str], note: str, width: int) -> list[str]:
    """The definitions of the image panel and of ``columns`` (see :data:`PANELS`), then ``note``, wrapped."""
    entries = [f"image: {PANELS['image']}"] + [f"{key}: {PANELS[key]}" for key in columns if key in PANELS]
    if any(key not in PANELS for key in columns):
        entries.append(DISTILLER_PANEL)
    entries += ["Each map has its own colour scale (the bar beside it).", note]
    return [line for entry in entries if entry for line in textwrap.wrap(entry, width, subsequent_indent="  ")]


def display_image(inputs: Tensor, model) -> np.ndarray:
    """Undo the data preprocessor's normalisation for display (RGB, 0-1)."""
    dp = model.data_preprocessor
    image = inputs[0].float() * dp.std.cpu() + dp.mean.cpu()
    if not getattr(dp, "_channel_conversion", False):
        image = image[[2, 1, 0]]
    return (image.permute(1, 2, 0).clamp(0, 255) / 255).numpy()


def draw_attention_figure(config: str, teacher_checkpoint: str | None, path: str, index: int = 0,
                          checkpoint: str | None = None, levels: Sequence[str] | None = ("p3", "p4", "p5")) -> None:
    """Draw image, activations, teacher attention and the distillers' masks of one validation image."""
    cfg, model = load_distill_model(config, teacher_checkpoint, checkpoint)
    inputs, samples = val_batch(cfg, model, index)
    maps = collect_maps(model, inputs, samples)
    draw(display_image(inputs, model), maps, path, levels, samples[0].gt_instances.bboxes.numpy(),
         weights_note(checkpoint))


def weights_note(checkpoint: str | None) -> str:
    """Where the student's and the distillers' weights come from, for the caption."""
    if checkpoint:
        return f"Student and distillers: trained weights of {osp.basename(checkpoint)}."
    return "Student and distillers: UNTRAINED (random initialisation; no training checkpoint loaded)."
