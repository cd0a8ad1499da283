"""Time and size a distillation step against its parts: the student step, the teacher features, the distillers.

    python tools/benchmark.py [--config configs/toy/pkd_retina_toy.py] [--distillers PKD CWD ...]
        [--batch-size 2] [--img-size N] [--iters 20] [--warmup 5] [--amp] [--channels-last]
        [--random-teacher] [--threads N] [--json OUT]

Phases. The config is read once, at the start; every phase builds the student and teacher model configs
read then. Every phase runs on one synthetic batch (random images, random GT boxes packed as mmdet
``DetDataSample``s; the same batch every iteration):

- ``student``: the plain student detector of the config: loss, backward and SGD step (mmengine's
  ``OptimWrapper``, as in training).
- ``teacher``: ``Teacher.records`` (kdtools.detectors.teacher), the teacher side of a ``DistillDetector`` on its
  own: eval mode, inference mode, only as deep as the distillers declare (backbone + neck for FPN taps, the
  whole network for head distillers).
- one phase per distiller: a ``DistillDetector`` with just that distiller: loss, backward and SGD step over
  the student and distiller parameters. The time spent inside the distillers' forward is taken by hooks
  around each distiller. A distiller's training-only pass is also timed alone each iteration (t_extra):
  for feature distillers with training-only blocks (those named in their ``training_only`` attribute:
  DMKD's and DFMSD's generators, MGD's generation blocks) forward + backward of the blocks on random
  features of the matched teacher levels' shapes, their FLOPs counted analytically (2 x k x k x C_in x
  C_out x H x W x N per conv forward, x 3 for forward + backward); for head distillers what their
  ``training_only_pass`` returns (CrossKD: the teacher's remaining head layers on the student's features,
  forward + backward).

The distillers timed by default are every registered distiller (``DISTILLERS``) that fits the config's
student: the feature distillers, and the head distillers whose ``head_types`` the student's head is. Each
takes the config's own entry of its type if there is one, else its defaults; a feature distiller gets
``connector='conv1x1'`` where that entry names no connector and the student's and teacher's necks differ in
width.

Timing. Each phase lives in its own spawned process, which imports the config's ``custom_imports`` (found, as
by the parent, in the directory the tool runs from) before it builds. The student and teacher processes stay up for the
whole run; the distillers' processes come one after another, and while one is up the three are driven in
turn, one iteration each (student, teacher, distillation), so each distiller's ratio compares iterations
taken in the same stretch of time (on a shared machine the load changes from minute to minute). Times are
wall times (CUDA synchronised before and after each iteration), medians of ``--iters`` iterations after
``--warmup`` untimed ones. Ratios: overhead = t_kd / (t_student + t_teacher), with the student and teacher
medians of that distiller's stretch; with a training-only pass also t_kd / (t_student + t_teacher + t_extra).
The bar for both is 1.10 for feature distillers, 1.05 for head distillers. The overhead is also given in
process CPU time (all threads), which other jobs on the machine disturb less than wall time (on CPU; on CUDA
it only counts the host side).

Peak memory, per process: on CUDA ``max_memory_allocated`` minus what was allocated when the phase
started; on CPU the peak RSS (``ru_maxrss``) minus the RSS measured right after the imports and the batch
creation, before any model is built, so the interpreter and libraries are not counted. The bar:
peak(kd) <= 1.10 x (peak(student) + peak(teacher) + distiller modules), with the distiller modules counted
as parameter bytes x 4 (weights, gradients and Adam's two moment buffers; the SGD with momentum timed here
keeps one buffer, so this is an upper bound for it).

``--amp``: bf16 autocast on CPU (kdtools' ``CPUAmpOptimWrapper``), fp16 autocast with a dynamic loss
scaler on CUDA (mmengine's ``AmpOptimWrapper``), for the student and distillation steps; distillers compute
their losses in fp32 whatever the autocast. The teacher's precision follows the config's ``teacher_half``.
``--random-teacher`` saves a randomly initialised teacher checkpoint to a temporary file (timings do not
depend on the weights); so does a run whose config names a teacher checkpoint that does not exist yet (a
fresh clone), saying so. No pretrained weights are fetched: ``Pretrained`` init configs are removed.

A codistill config (``configs/codistill/*.py``) times peer 0's step: the teacher phase is its stale copy of peer 1
(randomly initialised: timings do not depend on the weights), the distillation phase a ``DistillDetector`` with
``peers=[...]`` and the config's distillers, bar 1.10 x (t_student + t_peer). The exchange of a peer's weights is
timed apart, between two spawned gloo processes, and reported per exchange and per iteration at the config's
``exchange_interval``.
"""
from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import os.path as osp
import platform
import statistics
import tempfile
import traceback
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

import mmcv
import mmdet
import torch
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.structures import InstanceData
from torch import Tensor, nn

import kdtools  # noqa: F401  (registers the detector and the distillers)
from kdtools.benchmarking import (
    BAR,
    HEAD_BAR,
    BenchSpec,
    ForwardTimer,
    GenerationBlocks,
    Measurements,
    PeakMemory,
    Step,
    Window,
    format_report,
    neck_channels,
    summarise,
    synchronizer,
    timed,
)
from kdtools.codistill import peer_config
from kdtools.config import expand_distill_config, import_custom_modules, read_config
from kdtools.detectors.distill_detector import DistillDetector
from kdtools.detectors.teacher import Teacher, load_model_config, resolve_checkpoint
from kdtools.distillers.head import HeadDistiller
from kdtools.distillers.query import QueryDistiller
from kdtools.registry import DISTILLERS, build_distiller
from kdtools.training import CPUAmpOptimWrapper

DEFAULT_CONFIG = "configs/toy/pkd_retina_toy.py"
DETECTOR_OPTIONS = ("teacher_half", "nonfinite")
BOXES_PER_IMAGE = 8
LEARNING_RATE = 1e-4  # timings do not depend on it; small, so that many steps on one batch stay finite


# ------------------------------------------------------------------------------------------------ settings
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark distillation against the student and teacher alone",
        epilog="The ratio is t_kd / (t_student + t_teacher); against the student alone the step costs "
               "ratio x (t_student + t_teacher) / t_student, e.g. PKD at 1.008 of student + teacher is 1.29 x the "
               "student alone when the teacher takes 28% of the student's time.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="a distillation config")
    parser.add_argument("--distillers", nargs="+",
                        help="distiller types to time (default: every registered one that fits the student)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--img-size", type=int, help="square input side; default: the config's train scale")
    parser.add_argument("--iters", type=int, default=20, help="timed iterations per phase and distiller")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations before them")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast on CPU, fp16 + loss scaling on CUDA")
    parser.add_argument("--channels-last", action="store_true", help="channels_last models and inputs")
    parser.add_argument("--random-teacher", action="store_true", help="time a randomly initialised teacher")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error("--iters and --batch-size must be >= 1 and --warmup >= 0")
    return args


def strip_pretrained(cfg: Any) -> Any:
    """A copy of a model config without ``init_cfg=dict(type='Pretrained', ...)`` anywhere: nothing is fetched."""
    if isinstance(cfg, dict):
        return {
            key: strip_pretrained(value)
            for key, value in cfg.items()
            if not (key == "init_cfg" and isinstance(value, dict) and value.get("type") == "Pretrained")
        }
    if isinstance(cfg, list):
        return [strip_pretrained(value) for value in cfg]
    return cfg


def train_image_size(cfg: Config) -> tuple[int, int]:
    """(H, W) of a train image after the config's ``Resize``: short side x long side of its scale."""
    for step in cfg.get("train_dataloader", {}).get("dataset", {}).get("pipeline", []):
        scale = step.get("scale")
        if step.get("type") == "Resize" and scale is not None:
            scale = (scale, scale) if isinstance(scale, int) else tuple(scale)
            return min(scale), max(scale)
    raise ValueError("The config's train pipeline has no Resize with a fixed scale; give --img-size.")


def padded(size: tuple[int, int], divisor: int) -> tuple[int, int]:
    return tuple(-(-side // divisor) * divisor for side in size)


def distiller_configs(names: Sequence[str], configured: Sequence[dict], conv1x1: bool) -> dict[str, dict]:
    """Each distiller's config: the config's own entry of that type if any, else the defaults; a 1x1 conv
    connector is added where the config does not name one and the student and teacher necks differ in width."""
    configs = {}
    for name in names:
        cfg = next((copy.deepcopy(c) for c in configured if c.get("type") == name), dict(type=name))
        if conv1x1 and not issubclass(DISTILLERS.get(name), HeadDistiller):
            cfg.setdefault("connector", "conv1x1")
        configs[name] = cfg
    return configs


def fitting_distillers(student: dict) -> list[str]:
    """Every registered distiller that fits ``student``: feature distillers, head distillers whose ``head_types``
    its head is (or derives from), and query distillers when it is a DETR."""
    from mmdet.models.detectors import DetectionTransformer
    from mmdet.registry import MODELS

    DISTILLERS.import_from_location()
    head = (student.get("bbox_head") or {}).get("type")
    kinds = {klass.__name__ for klass in MODELS.get(head).__mro__} if head else set()
    detector = MODELS.get(student["type"]) if student.get("type") else None
    detr = detector is not None and issubclass(detector, DetectionTransformer)

    def fits(cls: type) -> bool:
        if issubclass(cls, QueryDistiller):
            return detr
        if issubclass(cls, HeadDistiller):
            return not detr and (not cls.head_types or bool(kinds & set(cls.head_types)))
        return True

    return sorted(name for name, cls in DISTILLERS.module_dict.items() if fits(cls))


def teacher_checkpoint(teacher: dict, model: dict, workdir: str, random: bool) -> str:
    """The teacher checkpoint to time: the config's, or a random one when asked or when the config's does not
    exist yet (timings do not depend on the weights)."""
    if not random:
        try:
            return resolve_checkpoint(teacher["config"], teacher["checkpoint"])
        except FileNotFoundError:
            print(f"Teacher checkpoint {teacher['checkpoint']!r} not found: timing a randomly initialised teacher "
                  "(timings do not depend on the weights).", flush=True)
    return save_random_teacher(model, osp.join(workdir, "random_teacher.pth"))


def save_random_teacher(model: dict, path: str) -> str:
    """Save a randomly initialised teacher (the config's architecture) in mmengine's checkpoint layout."""
    from mmdet.registry import MODELS

    model = {key: copy.deepcopy(value) for key, value in model.items() if key != "init_cfg"}
    torch.save({"state_dict": MODELS.build(model).state_dict(), "meta": {}}, path)
    return path


def make_spec(args: argparse.Namespace, workdir: str) -> BenchSpec:
    """Read the config; save a random teacher checkpoint in ``workdir`` if asked, else check the config's."""
    register_all_modules(init_default_scope=True)
    cfg = read_config(args.config)
    codistill = "codistill" in cfg
    if codistill:  # peer 0's step: its stale copy of peer 1 is the source, timed as the teacher phase
        cfg.work_dir = workdir
        cfg = peer_config(cfg, 0)
    model = expand_distill_config(cfg).model.to_dict()
    if model.get("type") != "DistillDetector":
        raise ValueError(f"{args.config} is not a distillation config: it names no teacher and no distill=[...].")
    student = strip_pretrained(model["student"])
    if codistill:
        teacher_model = strip_pretrained(model["peers"][0])
        checkpoint = save_random_teacher(teacher_model, osp.join(workdir, "stale_peer.pth"))
    else:
        teacher = model.get("teacher") or model["stages"][0]["teacher"]
        teacher_model = strip_pretrained(load_model_config(teacher["config"], teacher.get("cfg_options")).to_dict())
        checkpoint = teacher_checkpoint(teacher, teacher_model, workdir, args.random_teacher)
    size = (args.img_size, args.img_size) if args.img_size else train_image_size(cfg)
    divisor = int((student.get("data_preprocessor") or {}).get("pad_size_divisor", 1))
    channels = neck_channels(student), neck_channels(teacher_model)
    conv1x1 = None not in channels and channels[0] != channels[1]
    return BenchSpec(
        student=student,
        teacher=dict(config=teacher_model, checkpoint=checkpoint),  # every phase builds what was read here
        distillers=distiller_configs(args.distillers or default_distillers(model, codistill), model["distillers"],
                                     conv1x1),
        detector_options={key: model[key] for key in (*DETECTOR_OPTIONS, "peers") if key in model},
        batch_size=args.batch_size,
        image_size=size,
        padded_size=padded(size, divisor),
        num_classes=int(student.get("bbox_head", {}).get("num_classes", 80)),
        iters=args.iters,
        warmup=args.warmup,
        amp=args.amp,
        channels_last=args.channels_last,
        threads=args.threads,
        device="cuda" if torch.cuda.is_available() else "cpu",
        custom_imports=dict(cfg.get("custom_imports") or {}),
    )


def default_distillers(model: dict, codistill: bool) -> list[str]:
    """A codistill config's own distillers; else every registered one that fits the student."""
    if codistill:
        return list(dict.fromkeys(d["type"] for d in model["distillers"]))
    return fitting_distillers(model["student"])


def machine(spec: BenchSpec) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": spec.threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mmdet": mmdet.__version__,
        "mmcv": mmcv.__version__,
        "device": spec.device,
    }
    if spec.device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "unknown"


# ---------------------------------------------------------------------------------------------- the inputs
def random_boxes(count: int, height: int, width: int, generator: torch.Generator) -> Tensor:
    """``count`` x 4 boxes (x1, y1, x2, y2) of 5-40% of the image side, clipped to the image."""
    limit = torch.tensor([width, height], dtype=torch.float32)
    size = (torch.rand(count, 2, generator=generator) * 0.35 + 0.05) * limit
    centre = torch.rand(count, 2, generator=generator) * limit
    top_left = (centre - size / 2).clamp(min=0)
    bottom_right = torch.minimum(centre + size / 2, limit)
    return torch.cat([top_left, bottom_right], dim=1)


def make_batch(spec: BenchSpec) -> tuple[Tensor, list[DetDataSample]]:
    """Random normalised images (zero padding beyond the image) and random GT boxes, on the device."""
    generator = torch.Generator().manual_seed(0)
    (h, w), (ph, pw) = spec.image_size, spec.padded_size
    inputs = torch.zeros(spec.batch_size, 3, ph, pw)
    inputs[..., :h, :w] = torch.randn(spec.batch_size, 3, h, w, generator=generator)
    samples = []
    for _ in range(spec.batch_size):
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(ph, pw),
                                             batch_input_shape=(ph, pw), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=random_boxes(BOXES_PER_IMAGE, h, w, generator).to(spec.device),
            labels=torch.randint(spec.num_classes, (BOXES_PER_IMAGE,), generator=generator).to(spec.device),
        )
        samples.append(sample)
    inputs = inputs.to(spec.device)
    if spec.channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs, samples


# ------------------------------------------------------------------------------------------------- models
def optim_wrapper(model: nn.Module, spec: BenchSpec) -> OptimWrapper:
    """SGD with momentum in the wrapper training would use (fp32, bf16 autocast on CPU, fp16 AMP on CUDA)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9, weight_decay=1e-4)
    if not spec.amp:
        return OptimWrapper(optimizer=optimizer)
    if spec.device == "cuda":
        return AmpOptimWrapper(optimizer=optimizer, loss_scale="dynamic")
    return CPUAmpOptimWrapper(optimizer=optimizer)


def train_step(model: nn.Module, wrapper: OptimWrapper, inputs: Tensor, samples: list[DetDataSample]) -> None:
    """mmengine's ``BaseModel.train_step`` without the data preprocessor: loss, backward, step, zero grads."""
    with wrapper.optim_context(model):
        losses = model.loss(inputs, samples)
    loss, _ = model.parse_losses(losses)
    wrapper.update_params(loss)


def prepared(model: nn.Module, spec: BenchSpec) -> nn.Module:
    """``model`` on the device, channels_last if asked."""
    model.to(spec.device)
    if spec.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def build_trainable(cfg: dict, spec: BenchSpec) -> nn.Module:
    from mmdet.registry import MODELS

    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return prepared(model, spec).train()


def bench_teacher(spec: BenchSpec) -> Teacher:
    """The teacher side of a ``DistillDetector`` on its own, recording what all the timed distillers declare."""
    taps = [tap for cfg in spec.distillers.values() for tap in build_distiller(copy.deepcopy(cfg)).teacher_taps()]
    teacher = Teacher(spec.teacher, taps, dict(spec.student.get("data_preprocessor") or {}),
                      bool(spec.detector_options.get("teacher_half", False)), spec.device)
    prepared(teacher.model, spec)
    return teacher


def distill_detector(spec: BenchSpec, name: str) -> DistillDetector:
    """The distillation step of one distiller: from the teacher, or (codistillation) from a stale peer."""
    source = {} if "peers" in spec.detector_options else dict(teacher=spec.teacher)
    cfg = dict(type="DistillDetector", student=spec.student, distillers=[spec.distillers[name]],
               **source, **spec.detector_options)
    return build_trainable(cfg, spec)


# -------------------------------------------------------------------------------------- peer exchange
def serve_exchange(spec: BenchSpec, rank: int, store_path: str, queue: Any) -> None:
    """One of two gloo processes: broadcast the student's weights from rank 0, as a codistill exchange does."""
    import torch.distributed as dist

    from kdtools.hooks.peer_exchange import broadcast_state

    setup_process(spec)
    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=2)
    try:
        state = build_trainable(spec.student, spec).state_dict()
        times = []
        for _ in range(spec.warmup + spec.iters):
            dist.barrier()
            times.append(timed(lambda: broadcast_state(state, 0, dist.group.WORLD), lambda: None).wall)
        if rank == 0:
            queue.put(statistics.median(times[spec.warmup:]))
    finally:
        dist.destroy_process_group()


def exchange_seconds(spec: BenchSpec, workdir: str) -> float:
    """Median seconds of one exchange of a peer's weights between two CPU processes over gloo."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    store = osp.join(workdir, "exchange_store")
    processes = [context.Process(target=serve_exchange, args=(spec, rank, store, queue)) for rank in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    if any(process.exitcode for process in processes):
        raise RuntimeError("The exchange benchmark failed (see the processes' errors above).")
    return queue.get()


# --------------------------------------------------------------------------------------- training-only pass
def training_only_pass(model: DistillDetector, inputs: Tensor, samples: list[DetDataSample],
                       spec: BenchSpec) -> tuple[Callable[[], None] | None, float | None]:
    """What the (single) distiller runs beyond the models' passes, to time alone, and its GFLOPs if counted:
    a feature distiller's generation blocks on random features of its matched teacher levels' shapes, or a
    head or query distiller's own pass (CrossKD's crossing, KD-DETR's extra decoder passes) on this batch's
    records; (None, None) when neither."""
    distiller = model.distillers[0]
    blocks = distiller.training_only_blocks()
    is_head = isinstance(distiller, (HeadDistiller, QueryDistiller))
    if not (blocks or is_head):
        return None, None
    with torch.no_grad():
        student, teacher = model.student_records(inputs, samples), model.sources[0].records(inputs, samples)
    if is_head:
        return distiller.training_only_pass(student, teacher), None
    _, teacher_levels = distiller.inputs(student, teacher)
    shapes = [teacher_levels[pair.teacher_index].shape for pair in distiller.levels]
    generation = GenerationBlocks(blocks, shapes, spec.device, spec.channels_last)
    return generation.step, generation.gflop


# ------------------------------------------------------------------------------------------------- phases
def setup_process(spec: BenchSpec) -> None:
    torch.set_num_threads(spec.threads)
    register_all_modules(init_default_scope=True)
    import_custom_modules(spec.custom_imports)  # a spawned process has imported kdtools, not the config's modules
    MMLogger.get_instance("kdtools-benchmark", log_level="WARNING")


class Phase:
    """One phase built in this process: 'student', 'teacher' or a distiller type of ``spec.distillers``.

    ``step()`` runs one iteration and returns its times (for a distiller with the time spent in the
    distiller's forward); ``finish()`` reports the peak memory and the distiller figures. On CPU the peak
    memory is the phase's own only in a fresh process (the RSS high-water mark never goes down).
    """

    def __init__(self, spec: BenchSpec, name: str) -> None:
        setup_process(spec)
        self.spec = spec
        self.sync = synchronizer(spec.device)
        self.inputs, self.samples = make_batch(spec)
        self.memory = PeakMemory(spec.device)
        self.timer: ForwardTimer | None = None
        self.extra: Callable[[], None] | None = None
        self.extra_gflop: float | None = None
        if name == "teacher":
            self.run = partial(bench_teacher(spec).records, self.inputs, self.samples)
            return
        self.model = build_trainable(spec.student, spec) if name == "student" else distill_detector(spec, name)
        self.run = partial(train_step, self.model, optim_wrapper(self.model, spec), self.inputs, self.samples)
        if name == "student":
            return
        self.timer = ForwardTimer(self.model.distillers, self.sync)
        self.extra, self.extra_gflop = training_only_pass(self.model, self.inputs, self.samples, spec)

    def step(self) -> Step:
        step = timed(self.run, self.sync)
        if self.timer is None:
            return step
        extra = timed(self.extra, self.sync).wall if self.extra else None
        return Step(step.wall, step.cpu, self.timer.take(), extra)

    def finish(self) -> dict[str, float]:
        info = {"peak_mib": self.memory.peak_mib()}
        if self.timer is not None:
            params = self.model.distillers.parameters()
            info["distiller_param_bytes"] = sum(p.numel() * p.element_size() for p in params)
            head = isinstance(self.model.distillers[0], HeadDistiller) and not self.model.peers
            info["time_bar"] = HEAD_BAR if head else BAR  # codistillation: 1.10 x (student + stale peer)
        if self.extra_gflop is not None:
            info["extra_gflop"] = self.extra_gflop
        return info

    def close(self) -> None:
        """Nothing to release beyond what garbage collection does."""


def serve_phase(spec: BenchSpec, name: str, conn: Connection) -> None:
    """Body of a phase process: build the phase, then answer 'step' and 'finish' until 'close'."""
    try:
        phase = Phase(spec, name)
        conn.send((True, None))
        for command in iter(conn.recv, "close"):
            conn.send((True, getattr(phase, command)()))
    except Exception:
        conn.send((False, traceback.format_exc()))


class RemotePhase:
    """A :class:`Phase` in a fresh spawned process (so its peak memory is its own), driven over a pipe."""

    def __init__(self, spec: BenchSpec, name: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve_phase, args=(spec, name, child), daemon=True)
        self.process.start()
        child.close()
        self._reply()

    def _reply(self) -> Any:
        ok, value = self.conn.recv()
        if not ok:
            raise RuntimeError(f"Benchmark phase {self.name!r} failed:\n{value}")
        return value

    def step(self) -> Step:
        self.conn.send("step")
        return self._reply()

    def finish(self) -> dict[str, float]:
        self.conn.send("finish")
        return self._reply()

    def close(self) -> None:
        if self.process.is_alive():
            self.conn.send("close")
        self.process.join()
        self.conn.close()


def measure(spec: BenchSpec, isolate: bool = True) -> Measurements:
    """Student and teacher up throughout; each distiller in turn, its iterations interleaved with theirs.

    ``isolate=False`` builds every phase in this process (quick checks; the memory figures are then not
    per phase).
    """
    open_phase = RemotePhase if isolate else Phase
    with ExitStack() as stack:
        student = open_phase(spec, "student")
        stack.callback(student.close)
        teacher = open_phase(spec, "teacher")
        stack.callback(teacher.close)
        for _ in range(spec.warmup):
            student.step()
            teacher.step()
        windows = {name: distiller_window(spec, name, open_phase, student, teacher) for name in spec.distillers}
        return Measurements(student.finish()["peak_mib"], teacher.finish()["peak_mib"], windows)


def distiller_window(spec: BenchSpec, name: str, open_phase: Callable[[BenchSpec, str], Phase | RemotePhase],
                     student: Phase | RemotePhase, teacher: Phase | RemotePhase) -> Window:
    kd = open_phase(spec, name)
    try:
        for _ in range(spec.warmup):
            kd.step()
        window = Window()
        for _ in range(spec.iters):
            for phase, handle in (("student", student), ("teacher", teacher), ("kd", kd)):
                window.record(phase, handle.step())
        window.info = kd.finish()
    finally:
        kd.close()
    t_s, t_t, t_kd = (statistics.median(times) * 1e3 for times in (window.student, window.teacher, window.kd))
    print(f"{name}: kd {t_kd:.1f} ms, student {t_s:.1f} ms, teacher {t_t:.1f} ms", flush=True)
    return window


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as workdir:
        spec = make_spec(args, workdir)
        measurements = measure(spec)
        exchange = exchange_seconds(spec, workdir) if "peers" in spec.detector_options else None
    rows = summarise(measurements)
    info = machine(spec)
    print(format_report(info, spec, args.config, measurements, rows))
    if exchange is not None:
        interval = read_config(args.config).codistill.get("exchange_interval", 50)
        print(f"\nCodistillation: the teacher phase is the stale peer's records. Exchange of a peer's weights "
              f"(2 gloo processes): {exchange * 1e3:.1f} ms, every {interval} iterations: "
              f"{exchange * 1e3 / interval:.2f} ms per iteration.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "machine": info,
                "config": args.config,
                "spec": asdict(spec),
                "measurements": asdict(measurements),
                "distillers": [dict(asdict(row), overhead_bar_met=row.overhead_bar_met,
                                    extra_bar_met=row.extra_bar_met, memory_bar_met=row.memory_bar_met)
                               for row in rows],
                "exchange_s": exchange,
            }, f, indent=2)


if __name__ == "__main__":
    main()
