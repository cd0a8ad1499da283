"""What only a CUDA GPU can check: mmcv's compiled ops on CUDA against their CPU results (NMS, RoIAlign, the
modulated deformable convolution, multi-scale deformable attention, the sigmoid focal loss RetinaNet trains
with), distillation steps under fp16 AMP, and tools/benchmark.py's CUDA path. Skipped where torch sees no
GPU; ``bash tools/gpu_check.sh`` runs them on one."""
from __future__ import annotations

import pytest
import torch
from conftest import ALL_DISTILLERS, ROOT, save_random_checkpoint, tool_module, toy_distill_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

GFL_STUDENT = ROOT / "configs/toy/gfl_toy_student.py"
GFL_TEACHER = ROOT / "configs/toy/gfl_toy_teacher.py"


def on_both(*tensors: torch.Tensor, grad: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The same values as CPU and CUDA leaf tensors (requiring gradients if asked)."""
    cpu = [t.detach().clone().requires_grad_(grad and t.is_floating_point()) for t in tensors]
    cuda = [t.detach().cuda().requires_grad_(grad and t.is_floating_point()) for t in tensors]
    return cpu, cuda


def assert_same(cuda: torch.Tensor, cpu: torch.Tensor, **tolerance: float) -> None:
    torch.testing.assert_close(cuda.detach().cpu(), cpu.detach(), **tolerance)


def random_boxes(n: int, side: float, generator: torch.Generator) -> torch.Tensor:
    top_left = torch.rand(n, 2, generator=generator) * side * 0.8
    size = torch.rand(n, 2, generator=generator) * side * 0.3 + 4
    return torch.cat([top_left, top_left + size], dim=1)


# ------------------------------------------------------------------------------------ mmcv ops: CUDA vs CPU
def test_mmcv_ops_were_compiled_with_cuda():
    import mmcv._ext  # noqa: F401  (the compiled ops)
    from mmcv.ops import get_compiling_cuda_version

    assert get_compiling_cuda_version() not in ("", "not available")


def test_nms_and_batched_nms_match_cpu():
    from mmcv.ops import batched_nms, nms

    g = torch.Generator().manual_seed(0)
    boxes, scores = random_boxes(200, 128.0, g), torch.rand(200, generator=g)
    classes = torch.randint(4, (200,), generator=g)
    (b, s), (b_cuda, s_cuda) = on_both(boxes, scores)

    dets, keep = nms(b, s, iou_threshold=0.5)
    dets_cuda, keep_cuda = nms(b_cuda, s_cuda, iou_threshold=0.5)
    assert keep_cuda.is_cuda and 0 < len(keep) < len(boxes)
    assert torch.equal(keep_cuda.cpu(), keep)
    assert_same(dets_cuda, dets)

    nms_cfg = dict(type="nms", iou_threshold=0.5)
    dets, keep = batched_nms(b, s, classes, nms_cfg)
    dets_cuda, keep_cuda = batched_nms(b_cuda, s_cuda, classes.cuda(), nms_cfg)
    assert torch.equal(keep_cuda.cpu(), keep)
    assert_same(dets_cuda, dets)


@pytest.mark.parametrize("pool_mode", ["avg", "max"])
def test_roi_align_forward_and_backward_match_cpu(pool_mode):
    from mmcv.ops import roi_align

    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 16, 32, 32, generator=g)
    rois = torch.cat([torch.randint(2, (24, 1), generator=g).float(), random_boxes(24, 128.0, g)], dim=1)
    (x,), (x_cuda,) = on_both(feats, grad=True)
    args = ((7, 7), 0.25, 2, pool_mode, True)  # output size, spatial scale (stride 4), sampling ratio, mode, aligned

    out, out_cuda = roi_align(x, rois, *args), roi_align(x_cuda, rois.cuda(), *args)
    assert_same(out_cuda, out, rtol=1e-5, atol=1e-5)
    weights = torch.randn(out.shape, generator=g)
    (out * weights).sum().backward()
    (out_cuda * weights.cuda()).sum().backward()
    assert_same(x_cuda.grad, x.grad, rtol=1e-5, atol=1e-5)


def test_modulated_deform_conv_forward_and_backward_match_cpu():
    from mmcv.ops import modulated_deform_conv2d

    g = torch.Generator().manual_seed(2)
    n, c, h, w, k, groups = 2, 8, 12, 12, 3, 2  # two deformable groups
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    offset = torch.randn(n, groups * 2 * k * k, h, w, generator=g, dtype=torch.float64) * 2
    mask = torch.rand(n, groups * k * k, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(c, c, k, k, generator=g, dtype=torch.float64) * 0.1
    bias = torch.randn(c, generator=g, dtype=torch.float64)
    cpu, cuda = on_both(x, offset, mask, weight, bias, grad=True)
    args = (1, 1, 1, 1, groups)  # stride, padding, dilation, groups, deform_groups

    out, out_cuda = modulated_deform_conv2d(*cpu, *args), modulated_deform_conv2d(*cuda, *args)
    assert out.shape == (n, c, h, w)
    assert_same(out_cuda, out, rtol=1e-9, atol=1e-9)
    weights = torch.randn(out.shape, generator=g, dtype=torch.float64)
    (out * weights).sum().backward()
    (out_cuda * weights.cuda()).sum().backward()
    for name, a, b in zip(("input", "offset", "mask", "weight", "bias"), cuda, cpu):
        assert_same(a.grad, b.grad, rtol=1e-7, atol=1e-7, msg=f"gradient of the {name}")


def test_multi_scale_deformable_attention_matches_the_pytorch_version():
    from mmcv.ops.multi_scale_deform_attn import (
        MultiScaleDeformableAttnFunction,
        multi_scale_deformable_attn_pytorch,
    )

    g = torch.Generator().manual_seed(3)
    bs, heads, dims, queries, points = 2, 4, 8, 10, 4
    shapes = torch.tensor([[16, 12], [8, 6], [4, 3]])
    starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    keys, levels = int(shapes.prod(1).sum()), len(shapes)
    value = torch.rand(bs, keys, heads, dims, generator=g, dtype=torch.float64)
    locations = torch.rand(bs, queries, heads, levels, points, 2, generator=g, dtype=torch.float64)
    attention = torch.rand(bs, queries, heads, levels, points, generator=g, dtype=torch.float64) + 1e-5
    attention /= attention.sum((-1, -2), keepdim=True)
    (v, loc, att), (v_cuda, loc_cuda, att_cuda) = on_both(value, locations, attention, grad=True)

    out = multi_scale_deformable_attn_pytorch(v, shapes, loc, att)  # grid_sample, on the CPU
    out_cuda = MultiScaleDeformableAttnFunction.apply(v_cuda, shapes.cuda(), starts.cuda(), loc_cuda, att_cuda, 2)
    assert out.shape == (bs, queries, heads * dims)
    assert_same(out_cuda, out, rtol=1e-10, atol=1e-12)
    weights = torch.randn(out.shape, generator=g, dtype=torch.float64)
    (out * weights).sum().backward()
    (out_cuda * weights.cuda()).sum().backward()
    for name, a, b in (("value", v_cuda, v), ("sampling locations", loc_cuda, loc), ("attention", att_cuda, att)):
        assert_same(a.grad, b.grad, rtol=1e-7, atol=1e-9, msg=f"gradient of the {name}")


def test_sigmoid_focal_loss_matches_the_pytorch_formula():
    from mmcv.ops import sigmoid_focal_loss
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

    g = torch.Generator().manual_seed(4)
    num_classes = 5
    logits = torch.randn(64, num_classes, generator=g) * 3
    labels = torch.randint(num_classes + 1, (64,), generator=g)  # num_classes: background
    (x,), (x_cuda,) = on_both(logits, grad=True)
    one_hot = torch.nn.functional.one_hot(labels, num_classes + 1)[:, :num_classes].float()

    loss = py_sigmoid_focal_loss(x, one_hot, gamma=2.0, alpha=0.25, reduction="sum")
    loss_cuda = sigmoid_focal_loss(x_cuda, labels.cuda(), 2.0, 0.25, None, "sum")
    assert_same(loss_cuda, loss, rtol=1e-5, atol=1e-5)
    loss.backward()
    loss_cuda.backward()
    assert_same(x_cuda.grad, x.grad, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------------- fp16 AMP
def cuda_model_and_batch(cfg, n: int = 2):
    """The DistillDetector of ``cfg`` on the GPU (its teacher too) and a preprocessed toy batch there."""
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate

    from kdtools.config import expand_distill_config

    model = MODELS.build(expand_distill_config(cfg).model)
    model.init_weights()
    model.cuda().train()
    assert next(model.teacher.model.parameters()).is_cuda
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(n)]), training=True)
    assert data["inputs"].is_cuda
    return model, data["inputs"], data["data_samples"]


def amp_step(model, inputs, samples) -> dict[str, torch.Tensor]:
    """One training step as mmengine's AmpOptimWrapper runs it (fp16 autocast, scaled loss); returns the losses
    and checks that every gradient is finite once unscaled and that the student's neck ran in fp16."""
    from mmengine.optim import AmpOptimWrapper

    # A static scale: a gradient overflows only where its unscaled value does not fit fp16 / 16.
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9),
                              loss_scale=16.0)
    dtypes = []
    hook = model.student.neck.register_forward_hook(lambda module, args, out: dtypes.append(out[0].dtype))
    try:
        with wrapper.optim_context(model):
            losses = model.loss(inputs, samples)
    finally:
        hook.remove()
    assert dtypes == [torch.float16]
    loss, _ = model.parse_losses(losses)
    wrapper.backward(loss)
    wrapper.loss_scaler.unscale_(wrapper.optimizer)
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert grads and all(g.dtype == torch.float32 for g in grads.values())
    bad = [name for name, g in grads.items() if not torch.isfinite(g).all()]
    assert not bad, f"non-finite gradients under fp16 AMP: {bad[:5]}"
    wrapper.step()
    wrapper.zero_grad()
    return losses


def distill_losses(losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The distillers' losses: not the detectors' own, nor logged values such as DMKD's fusion weights."""
    own = ("loss_cls", "loss_bbox", "loss_dfl")
    return {k: v for k, v in losses.items() if k.startswith("loss_") and not k.startswith(own)}


def test_every_feature_distiller_trains_under_fp16_amp_with_fp32_losses(make_config):
    model, inputs, samples = cuda_model_and_batch(make_config(ALL_DISTILLERS))
    distill = distill_losses(amp_step(model, inputs, samples))
    assert {k.split("_")[1] for k in distill} == {d["name"] for d in ALL_DISTILLERS}
    bad = {k: (v.dtype, float(v)) for k, v in distill.items() if v.dtype != torch.float32 or not torch.isfinite(v)}
    assert not bad, f"distillation losses not finite fp32 under fp16 autocast: {bad}"


@pytest.fixture(scope="module")
def gfl_teacher_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    return save_random_checkpoint(GFL_TEACHER, tmp_path_factory.mktemp("gfl_teacher") / "teacher.pth")


@pytest.mark.parametrize("distill", [dict(type="CrossKD", reused_layer=2, box_loss="giou"), dict(type="LD"),
                                     dict(type="BCKD")], ids=["CrossKD", "LD", "BCKD"])
def test_head_distillers_train_under_fp16_amp_with_fp32_losses(toy_root, gfl_teacher_ckpt, distill):
    cfg = toy_distill_config(toy_root, gfl_teacher_ckpt, [distill], student=GFL_STUDENT, teacher=GFL_TEACHER)
    model, inputs, samples = cuda_model_and_batch(cfg)
    losses = amp_step(model, inputs, samples)
    values = [(k, t) for k, v in losses.items() if k.startswith("loss")  # mmdet heads: a list, one per level
              for t in (v if isinstance(v, (list, tuple)) else [v])]
    bad = {k: (t.dtype, float(t)) for k, t in values if t.dtype != torch.float32 or not torch.isfinite(t)}
    assert not bad, f"losses not finite fp32 under fp16 autocast: {bad}"
    assert distill_losses(losses) and all(k.startswith(f"loss_{distill['type'].lower()}")
                                          for k in distill_losses(losses))


def test_amp_training_on_cuda_runs_fp16_with_a_half_precision_teacher(make_config, tmp_path):
    """``tools/train.py --amp`` on a GPU: mmengine's AmpOptimWrapper (fp16, dynamic loss scale)."""
    from mmengine.runner import Runner

    from kdtools.config import expand_distill_config
    from kdtools.training import enable_amp

    cfg = make_config([dict(type="MGD", connector="conv1x1")], work_dir=str(tmp_path), teacher_half=True)
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=3, val_interval=100)
    cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=True)
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == "AmpOptimWrapper" and cfg.optim_wrapper.loss_scale == "dynamic"
    runner = Runner.from_cfg(expand_distill_config(cfg))
    seen = {}

    def record(name: str):
        def hook(module, args, out) -> None:
            seen.setdefault(name, (out[0].dtype, out[0].device.type))
        return hook

    runner.model.student.neck.register_forward_hook(record("student"))
    runner.model.teacher.model.neck.register_forward_hook(record("teacher"))
    runner.train()
    assert seen == {"student": (torch.float16, "cuda"), "teacher": (torch.float16, "cuda")}
    assert torch.isfinite(torch.tensor(runner.message_hub.get_scalar("train/loss_mgd_p3").current()))


# -------------------------------------------------------------------------------- tools/benchmark.py on CUDA
# In this process; tools/gpu_check.sh runs the whole tool (its phases in spawned processes) on the COCO configs.
@pytest.fixture(scope="module")
def benchmark():
    with tool_module("benchmark") as module:
        yield module


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "fp16-amp"])
def test_benchmark_times_pkd_on_cuda(benchmark, tmp_path, monkeypatch, amp):
    from mmengine.optim import AmpOptimWrapper

    from kdtools import benchmarking

    monkeypatch.chdir(ROOT)  # the toy config names its teacher config relative to the repository
    argv = ["--distillers", "PKD", "--iters", "2", "--warmup", "1", "--random-teacher"] + (["--amp"] if amp else [])
    args = benchmark.parse_args(argv)
    spec = benchmark.make_spec(args, str(tmp_path))
    assert spec.device == "cuda" and spec.amp == amp
    phase = benchmark.Phase(spec, "PKD")
    assert next(phase.model.parameters()).is_cuda and phase.inputs.is_cuda
    assert isinstance(benchmark.optim_wrapper(phase.model, spec), AmpOptimWrapper) == amp

    measurements = benchmark.measure(spec, isolate=False)
    window = measurements.windows["PKD"]
    assert all(len(times) == 2 and min(times) > 0 for times in (window.student, window.teacher, window.kd))
    assert measurements.student_peak_mib > 0 and window.info["peak_mib"] > 0  # CUDA max_memory_allocated
    rows = benchmarking.summarise(measurements)
    info = benchmark.machine(spec)
    assert info["device"] == "cuda" and info["gpu"] == torch.cuda.get_device_name()
    report = benchmarking.format_report(info, spec, args.config, measurements, rows)
    assert "| PKD |" in report and ("fp16 AMP" in report) == amp
