"""Control teachers: each keeps only the kind of knowledge it is meant to, on the toy GFL pair and CrossKD."""
from __future__ import annotations

import pytest
import torch
from conftest import save_random_checkpoint, toy_distill_config
from mmdet.registry import MODELS
from test_head_distillers import GFL_STUDENT, GFL_TEACHER, SIZE, batch_data

from kdtools.checkpoint import load_checkpoint_file, state_dict_of
from kdtools.config import expand_distill_config
from kdtools.detectors.controls import ClassPriorTeacher, class_of_rows, control_spec
from kdtools.detectors.teacher import Teacher
from kdtools.distillers import DistillBatch
from kdtools.modules.dense_heads import assigned_targets, flatten_levels

CROSSKD = [dict(type="CrossKD", reused_layer=2)]


@pytest.fixture(scope="module")
def gfl_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    return save_random_checkpoint(GFL_TEACHER, tmp_path_factory.mktemp("gfl_teacher") / "teacher.pth")


def build(toy_root: str, checkpoint: str, control, distill=CROSSKD):
    cfg = toy_distill_config(toy_root, checkpoint, distill, student=GFL_STUDENT, teacher=GFL_TEACHER,
                             teacher_control=control)
    model = MODELS.build(expand_distill_config(cfg).model)
    model.init_weights()
    return model.train()


def tensors(records, tap: str) -> list[torch.Tensor]:
    """Every tensor recorded at ``tap``, in order (head outputs are nested lists)."""
    out: list[torch.Tensor] = []

    def walk(value) -> None:
        if isinstance(value, torch.Tensor):
            out.append(value)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(records.calls[tap])
    return out


def records_of(model, control: bool = True):
    """The control's records and the real teacher's (the base class's records on the same model) of one batch."""
    inputs, samples = batch_data()
    batch = DistillBatch.from_data_samples(samples, (SIZE, SIZE))
    real = Teacher.records(model.teacher, inputs, samples, batch)
    return model.teacher.records(inputs, samples, batch), real, batch


def test_shuffled_records_are_a_permutation_of_the_real_ones(toy_root, gfl_ckpt):
    model = build(toy_root, gfl_ckpt, "shuffled")
    shuffled, real, _ = records_of(model)
    perm = model.teacher.last_permutation
    assert sorted(perm.tolist()) == [0, 1] and (perm != torch.arange(2)).all()
    for tap in real.calls:
        for got, want in zip(tensors(shuffled, tap), tensors(real, tap), strict=True):
            assert torch.equal(got, want[perm]) and not torch.equal(got, want)


def test_shuffled_needs_two_images(toy_root, gfl_ckpt):
    model = build(toy_root, gfl_ckpt, "shuffled")
    inputs, samples = batch_data(1)
    with pytest.raises(ValueError, match="batch_size >= 2"):
        model.teacher.records(inputs, samples)


def test_class_prior_gives_every_location_of_a_class_the_class_mean(toy_root, gfl_ckpt):
    model = build(toy_root, gfl_ckpt, "class_prior")
    prior, real, batch = records_of(model)
    head = real.head("bbox_head")
    targets = assigned_targets(head.head, head.cls_scores, batch)
    classes = class_of_rows(targets)
    got_cls = flatten_levels(prior.head("bbox_head").cls_scores).sigmoid()
    got_box = flatten_levels(prior.head("bbox_head").bbox_preds).reshape(len(classes), 4, -1).softmax(-1)
    real_cls = flatten_levels(head.cls_scores).sigmoid()
    real_box = flatten_levels(head.bbox_preds).reshape(len(classes), 4, -1).softmax(-1)
    counted = targets.label_weights > 0
    present = classes[counted].unique()
    assert len(present) >= 2  # background and at least one object class
    for c in present:
        rows = classes == c
        mean_cls = real_cls[rows & counted].mean(0)
        torch.testing.assert_close(got_cls[rows], mean_cls.expand(int(rows.sum()), -1), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got_box[rows], real_box[rows & counted].mean(0).expand(int(rows.sum()), -1, -1),
                                   rtol=1e-4, atol=1e-5)
    assert not torch.allclose(got_cls, real_cls)
    # the head's intermediate features (what CrossKD crosses through) stay the teacher's own
    for tap in real.calls:
        if tap != "bbox_head":
            assert all(torch.equal(a, b) for a, b in zip(tensors(prior, tap), tensors(real, tap), strict=True))


def test_class_prior_means_run_over_batches(toy_root, gfl_ckpt):
    model = build(toy_root, gfl_ckpt, "class_prior")
    records_of(model)
    first = [m.clone() for m in model.teacher.class_means(model.teacher.taps.modules["bbox_head"])]
    inputs, samples = batch_data()
    batch = DistillBatch.from_data_samples(samples, (SIZE, SIZE))
    model.teacher.records(inputs.flip(-1), samples, batch)  # other images, same boxes: other teacher outputs
    second = model.teacher.class_means(model.teacher.taps.modules["bbox_head"])
    assert not torch.allclose(first[0], second[0])
    assert isinstance(model.teacher, ClassPriorTeacher)


def test_label_smoothing_targets_are_the_smoothed_labels(toy_root, gfl_ckpt):
    model = build(toy_root, gfl_ckpt, dict(type="label_smoothing", epsilon=0.2))
    smoothed, real, batch = records_of(model)
    head = real.head("bbox_head")
    targets = assigned_targets(head.head, head.cls_scores, batch)
    k = targets.num_classes
    cls = flatten_levels(smoothed.head("bbox_head").cls_scores).sigmoid()
    pos = targets.positive
    assert pos.any()
    expected = torch.full_like(cls, 0.2 / k)
    expected[pos, targets.labels[pos]] = 0.8 + 0.2 / k
    torch.testing.assert_close(cls, expected, rtol=1e-4, atol=1e-5)
    # at positives the expected distance of each side is the ground truth's (GFL's distribution target)
    box = flatten_levels(smoothed.head("bbox_head").bbox_preds)
    gfl = head.head
    distances = gfl.integral(box[pos])
    centres = gfl.anchor_center(targets.anchors[pos]) / targets.strides[pos, None]
    truth = gfl.bbox_coder.encode(centres, targets.bbox_targets[pos] / targets.strides[pos, None], gfl.reg_max)
    bins = gfl.reg_max + 1
    torch.testing.assert_close(distances, 0.8 * truth + 0.2 * (bins - 1) / 2, rtol=1e-4, atol=1e-4)


def test_random_teacher_is_not_the_checkpoint(toy_root, gfl_ckpt):
    state = state_dict_of(load_checkpoint_file(gfl_ckpt))
    one, again, other = (build(toy_root, gfl_ckpt, dict(type="random", seed=s)).teacher.model.state_dict()
                         for s in (1, 1, 2))
    weights = [k for k, v in state.items() if v.is_floating_point() and v.dim() > 1]
    assert all(not torch.equal(one[k], state[k]) for k in weights)
    assert all(torch.equal(one[k], again[k]) for k in state)  # the seed decides it
    assert any(not torch.equal(one[k], other[k]) for k in weights)


@pytest.mark.parametrize("control", ["random", "shuffled", "class_prior", "label_smoothing"])
def test_every_control_trains_crosskd(toy_root, gfl_ckpt, control):
    model = build(toy_root, gfl_ckpt, control)
    inputs, samples = batch_data()
    losses = model.loss(inputs, samples)
    distill = sum(v for k, v in losses.items() if k.startswith("loss_crosskd"))
    assert torch.isfinite(distill) and distill > 0
    distill.backward()
    assert all(p.grad is None for p in model.teacher.model.parameters())


def test_head_controls_need_a_head_distiller(toy_root, gfl_ckpt):
    with pytest.raises(ValueError, match="head distiller"):
        build(toy_root, gfl_ckpt, "class_prior", [dict(type="PKD", student_tap="neck")])


def test_unknown_control_names_the_controls():
    with pytest.raises(ValueError, match="class_prior"):
        control_spec("teacherless")
    assert control_spec(None) is None and control_spec("random") == {"type": "random"}
