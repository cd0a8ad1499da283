"""The figures of ``tools/benchmark.py``: what a phase is given, what it measures, and the per-distiller summary.

A ``BenchSpec`` describes one run (picklable for the phases' spawned processes); ``timed``, ``PeakMemory``
and ``ForwardTimer`` measure a step; ``GenerationBlocks`` runs a distiller's training-only blocks alone;
``summarise`` turns each distiller's ``Window`` of interleaved iterations into a ``DistillerRow`` of
medians and ratios against the bars, and ``format_report`` prints them. The method is described in
``tools/benchmark.py`` and ``docs/benchmark.md``. ``detector_complexity`` counts a detector's parameters and
FLOPs (the EfficientFace tests and ``tools/results.py --study efficientface``).
"""
from __future__ import annotations

import gc
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

BAR = 1.10  # feature distillers
HEAD_BAR = 1.05  # head distillers
MIB = 2**20
STATE_COPIES = 4  # weights, gradients, two Adam moments


@dataclass(frozen=True)
class BenchSpec:
    """Everything a phase needs, picklable for a spawned process."""

    student: dict
    teacher: dict
    distillers: dict[str, dict]
    detector_options: dict
    batch_size: int
    image_size: tuple[int, int]
    padded_size: tuple[int, int]
    num_classes: int
    iters: int
    warmup: int
    amp: bool
    channels_last: bool
    threads: int
    device: str
    custom_imports: dict  # the config's, imported by every phase's process before it builds


@dataclass(frozen=True)
class Step:
    """One iteration: wall seconds, process CPU seconds (all threads); for a distiller the seconds inside its
    forward and those of its training-only pass (generation blocks, CrossKD's crossing) forward + backward,
    run alone after the step."""

    wall: float
    cpu: float
    distillers: float = 0.0
    extra: float | None = None


@dataclass
class Window:
    """A distiller's timed iterations with the student and teacher iterations interleaved with them: wall and
    process CPU seconds, and what its phase reported at the end (peak_mib, distiller_param_bytes, time_bar and,
    with generation blocks, extra_gflop)."""

    student: list[float] = field(default_factory=list)
    teacher: list[float] = field(default_factory=list)
    kd: list[float] = field(default_factory=list)
    distillers: list[float] = field(default_factory=list)
    extra: list[float] = field(default_factory=list)
    student_cpu: list[float] = field(default_factory=list)
    teacher_cpu: list[float] = field(default_factory=list)
    kd_cpu: list[float] = field(default_factory=list)
    info: dict[str, float] = field(default_factory=dict)

    def record(self, phase: str, step: Step) -> None:
        getattr(self, phase).append(step.wall)
        getattr(self, f"{phase}_cpu").append(step.cpu)
        if phase == "kd":
            self.distillers.append(step.distillers)
        if step.extra is not None:
            self.extra.append(step.extra)


@dataclass
class Measurements:
    student_peak_mib: float
    teacher_peak_mib: float
    windows: dict[str, Window]

    def all_iterations(self, phase: str) -> list[float]:
        return [t for window in self.windows.values() for t in getattr(window, phase)]


@dataclass
class DistillerRow:
    """One distiller against the student and the teacher of its stretch (seconds, MiB)."""

    name: str
    t_student: float
    t_teacher: float
    t_kd: float
    overhead: float
    cpu_overhead: float
    t_distillers: float
    peak_mib: float
    modules_mib: float
    memory_ratio: float
    extra_gflop: float | None
    t_extra: float | None
    overhead_with_extra: float | None
    time_bar: float = BAR

    @property
    def overhead_bar_met(self) -> bool:
        return self.overhead <= self.time_bar

    @property
    def extra_bar_met(self) -> bool | None:
        return None if self.overhead_with_extra is None else self.overhead_with_extra <= self.time_bar

    @property
    def memory_bar_met(self) -> bool:
        return self.memory_ratio <= BAR


def describe(model: dict) -> str:
    """'RetinaNet, ResNet-50 backbone, 256-ch neck' from a model config."""
    backbone = model.get("backbone", {})
    depth = f"-{backbone['depth']}" if "depth" in backbone else ""
    return f"{model['type']}, {backbone.get('type', '?')}{depth} backbone, {neck_channels(model)}-ch neck"


def neck_channels(model: dict) -> int | None:
    neck = model.get("neck")
    return neck.get("out_channels") if isinstance(neck, dict) else None


# -------------------------------------------------------------------------------------------- measurement
def current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory of this process above what it holds when this is created (CUDA: allocated; CPU: RSS)."""

    def __init__(self, device: str) -> None:
        self.cuda = device == "cuda"
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = current_rss()

    def peak_mib(self) -> float:
        if self.cuda:
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return (peak - self.base) / MIB


def synchronizer(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else lambda: None


def timed(run: Callable[[], object], sync: Callable[[], None]) -> Step:
    """Wall and process CPU seconds of one call of ``run``, synchronised before and after."""
    sync()
    start, start_cpu = time.perf_counter(), time.process_time()
    run()
    sync()
    return Step(time.perf_counter() - start, time.process_time() - start_cpu)


class ForwardTimer:
    """Wall time spent inside the forward of ``modules`` (synchronised on CUDA), summed until taken."""

    def __init__(self, modules: Sequence[nn.Module], sync: Callable[[], None]) -> None:
        self.sync = sync
        self.total = 0.0
        self._start = 0.0
        for module in modules:
            module.register_forward_pre_hook(self._enter)
            module.register_forward_hook(self._exit)

    def _enter(self, module: nn.Module, args: tuple) -> None:
        self.sync()
        self._start = time.perf_counter()

    def _exit(self, module: nn.Module, args: tuple, output: Any) -> None:
        self.sync()
        self.total += time.perf_counter() - self._start

    def take(self) -> float:
        total, self.total = self.total, 0.0
        return total


# --------------------------------------------------------------------------------------- generation blocks
class _DenseDetector(nn.Module):
    """A detector's backbone, neck and head as one module: the dense forward the complexity counter traces."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> Any:
        return self.detector.bbox_head(self.detector.neck(self.detector.backbone(x)))


def detector_complexity(config_or_model: str | Path | Any | nn.Module,
                        input_shape: tuple[int, int] = (192, 256)) -> tuple[int, float]:
    """The parameters and FLOPs of a one-stage mmdet detector (backbone + neck + ``bbox_head``) on one image.

    ``config_or_model``: a config file, an mmengine ``Config`` (a distillation config gives its student), or a
    built detector. ``input_shape`` is (height, width) of the one 3-channel input image; the default is BCCD's
    256x192 input. Parameters: every parameter of the detector (all of them are in backbone, neck and head).
    FLOPs: ``mmengine.analysis.get_model_complexity_info`` on the dense forward of backbone, neck and head in
    eval mode, one multiply-add counted as one FLOP; it counts convolutions, linear layers and matrix products,
    norms, upsampling and adaptive average pooling, and leaves out other element-wise operations (activations,
    additions, the attention products, weighted fusion sums), max pooling, and everything after the head:
    anchors, box decoding and NMS.
    """
    if not isinstance(config_or_model, nn.Module):
        from mmdet.registry import MODELS
        from mmengine.config import Config
        from mmengine.registry import init_default_scope

        from kdtools.config import read_config, student_config

        cfg = config_or_model if isinstance(config_or_model, Config) else read_config(str(config_or_model))
        if "distill" in cfg or cfg.model.get("type") == "DistillDetector":
            cfg = student_config(cfg)
        init_default_scope(cfg.get("default_scope", "mmdet"))
        config_or_model = MODELS.build(cfg.model)
    from mmengine.analysis import get_model_complexity_info

    model = config_or_model.eval()
    params = sum(p.numel() for p in model.parameters())
    image = torch.randn(1, 3, *input_shape, device=next(model.parameters()).device)
    with torch.no_grad():
        info = get_model_complexity_info(_DenseDetector(model), inputs=(image,), show_table=False, show_arch=False)
    return params, float(info["flops"])


def generation_flops(blocks: list[list[nn.Module]], shapes: Sequence[torch.Size]) -> float:
    """Forward + backward FLOPs of the blocks' convolutions: 3 x 2 x k_h x k_w x C_in x C_out x H x W x N each
    (stride-1, size-preserving convs, as in the generation blocks)."""
    total = 0
    for level, (n, _, h, w) in zip(blocks, shapes):
        convs = [m for block in level for m in block.modules() if isinstance(m, nn.Conv2d)]
        for conv in convs:
            k_h, k_w = conv.kernel_size
            total += 3 * 2 * k_h * k_w * conv.in_channels * conv.out_channels * h * w * n
    return float(total)


class GenerationBlocks:
    """A distiller's generation blocks on random features of the shapes they see in training."""

    def __init__(self, blocks: list[list[nn.Module]], shapes: Sequence[torch.Size], device: str,
                 channels_last: bool = False) -> None:
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.blocks = blocks
        self.features = [torch.randn(shape, device=device).contiguous(memory_format=memory_format).requires_grad_()
                         for shape in shapes]
        self.params = [p for level in blocks for block in level for p in block.parameters()]
        self.gflop = generation_flops(blocks, shapes) / 1e9

    def step(self) -> None:
        """Forward + backward of every block; the gradients are dropped, so training steps never see them."""
        for level, feature in zip(self.blocks, self.features):
            for block in level:
                block(feature).sum().backward()
        for tensor in (*self.params, *self.features):
            tensor.grad = None


# ------------------------------------------------------------------------------------------------- report
def summarise(measurements: Measurements) -> list[DistillerRow]:
    """One row per distiller: its medians and ratios against the student and teacher of its stretch."""
    rows = []
    for name, window in measurements.windows.items():
        t_s, t_t, t_kd = (statistics.median(times) for times in (window.student, window.teacher, window.kd))
        cpu_s, cpu_t, cpu_kd = (statistics.median(t) for t in (window.student_cpu, window.teacher_cpu, window.kd_cpu))
        info = window.info
        modules_mib = info["distiller_param_bytes"] * STATE_COPIES / MIB
        t_extra = statistics.median(window.extra) if window.extra else None
        rows.append(DistillerRow(
            name=name,
            t_student=t_s,
            t_teacher=t_t,
            t_kd=t_kd,
            overhead=t_kd / (t_s + t_t),
            cpu_overhead=cpu_kd / (cpu_s + cpu_t),
            t_distillers=statistics.median(window.distillers),
            peak_mib=info["peak_mib"],
            modules_mib=modules_mib,
            memory_ratio=info["peak_mib"] / (measurements.student_peak_mib + measurements.teacher_peak_mib
                                             + modules_mib),
            extra_gflop=info.get("extra_gflop"),
            t_extra=t_extra,
            overhead_with_extra=None if t_extra is None else t_kd / (t_s + t_t + t_extra),
            time_bar=info.get("time_bar", BAR),
        ))
    return rows


def _optional(value: float | None, scale: float, digits: int) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def verdict(met: bool | None) -> str:
    return "-" if met is None else "met" if met else "missed"


def format_report(info: dict[str, Any], spec: BenchSpec, config: str, measurements: Measurements,
                  rows: Sequence[DistillerRow]) -> str:
    """Markdown: the machine and settings, the student and teacher phases, one row per distiller."""
    (h, w), (ph, pw) = spec.image_size, spec.padded_size
    precision = ("bf16 autocast" if spec.device == "cpu" else "fp16 AMP") if spec.amp else "fp32"
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['threads']} torch threads, device {info['device']}"
        + (f" ({info['gpu']})" if "gpu" in info else "")
        + f"; python {info['python']}, torch {info['torch']}, mmdet {info['mmdet']}, mmcv {info['mmcv']}",
        f"Config: {config}; batch {spec.batch_size} of {h}x{w} (padded {ph}x{pw}); {precision}"
        f"{', channels_last' if spec.channels_last else ''}; medians of {spec.iters} iterations per distiller "
        f"after {spec.warmup} warm-up",
        f"Student: {describe(spec.student)}; teacher: {describe(spec.teacher['config'])}",
        "",
        "| phase | median time (ms), all iterations | peak memory (MiB) |",
        "|---|---:|---:|",
        f"| student step | {statistics.median(measurements.all_iterations('student')) * 1e3:.1f} "
        f"| {measurements.student_peak_mib:.0f} |",
        f"| teacher features | {statistics.median(measurements.all_iterations('teacher')) * 1e3:.1f} "
        f"| {measurements.teacher_peak_mib:.0f} |",
        "",
        "| distiller | t_s (ms) | t_t (ms) | t_kd (ms) | t_kd / (t_s + t_t) | same, CPU time | in distillers (ms) "
        "| peak (MiB) | modules x4 (MiB) | peak / (s + t + modules) | extra GFLOP | t_extra (ms) "
        "| t_kd / (t_s + t_t + t_extra) | time bar | overhead <= bar | with extra <= bar | memory <= 1.10 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.t_student * 1e3:.1f} | {row.t_teacher * 1e3:.1f} | {row.t_kd * 1e3:.1f} "
            f"| {row.overhead:.3f} | {row.cpu_overhead:.3f} | {row.t_distillers * 1e3:.1f} | {row.peak_mib:.0f} "
            f"| {row.modules_mib:.1f} | {row.memory_ratio:.3f} | {_optional(row.extra_gflop, 1, 2)} "
            f"| {_optional(row.t_extra, 1e3, 1)} | {_optional(row.overhead_with_extra, 1, 3)} | {row.time_bar:.2f} "
            f"| {verdict(row.overhead_bar_met)} | {verdict(row.extra_bar_met)} | {verdict(row.memory_bar_met)} |"
        )
    return "\n".join(lines)
