"""The records layer and the head distillers: per-call taps, token records, LD, CrossKD and BCKD in numbers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, build_plain, save_random_checkpoint, toy_distill_config
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

from kdtools.config import expand_distill_config
from kdtools.detectors.levels import map_shapes
from kdtools.detectors.taps import TapRecorder, run_to_depth
from kdtools.distillers import DistillBatch
from kdtools.modules.dense_heads import assigned_targets, recorded_targets
from kdtools.registry import build_distiller

GFL_STUDENT = ROOT / "configs/toy/gfl_toy_student.py"
GFL_TEACHER = ROOT / "configs/toy/gfl_toy_teacher.py"
SIZE = 128
LEVEL_SIDES = [16, 8, 4, 2, 1]  # P3-P7 of a 128 x 128 input
BOXES = [torch.tensor([[10.0, 12.0, 60.0, 50.0], [70.0, 64.0, 120.0, 126.0]]), torch.tensor([[30.0, 20.0, 94.0, 80.0]])]
LABELS = [torch.tensor([1, 3]), torch.tensor([0])]


@pytest.fixture(scope="module")
def gfl_teacher_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    return save_random_checkpoint(GFL_TEACHER, tmp_path_factory.mktemp("gfl_teacher") / "teacher.pth")


def gfl_config(toy_root: str, checkpoint: str, distill: list[dict]) -> Config:
    return toy_distill_config(toy_root, checkpoint, distill, student=GFL_STUDENT, teacher=GFL_TEACHER)


def build(cfg: Config):
    model = MODELS.build(expand_distill_config(cfg).model)
    model.init_weights()
    return model.train()


def batch_data(n: int = 2) -> tuple[torch.Tensor, list]:
    """Random normalised images with the fixed GT boxes above, as data samples."""
    from mmdet.structures import DetDataSample

    torch.manual_seed(1)
    inputs = torch.randn(n, 3, SIZE, SIZE)
    samples = []
    for boxes, labels in zip(BOXES[:n], LABELS[:n]):
        shape = (SIZE, SIZE)
        sample = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                                             batch_input_shape=shape, scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=labels)
        samples.append(sample)
    return inputs, samples


def head_outputs(toy_root: str, checkpoint: str, distill: list[dict]):
    """A DistillDetector of the toy GFL pair, the distiller's inputs on a fixed batch, and the batch."""
    model = build(gfl_config(toy_root, checkpoint, distill))
    inputs, samples = batch_data()
    with model.student_taps.recording() as student:
        model.student.loss(inputs, samples)
    teacher = model.teacher.records(inputs, samples)
    d = model.distillers[0]
    return model, d, d.inputs(student, teacher), DistillBatch.from_data_samples(samples, (SIZE, SIZE))


# ------------------------------------------------------------------------------------------------ records
def flat(maps: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([m.permute(0, 2, 3, 1).reshape(-1, m.shape[1]) for m in maps])


def test_a_shared_head_layer_gives_one_record_per_level():
    model = build_plain(GFL_STUDENT).eval()
    taps = ["bbox_head.gfl_cls", "bbox_head.cls_convs.1.activate:in", "bbox_head.cls_convs.1", "bbox_head"]
    recorder = TapRecorder(model, taps, "student")
    inputs, samples = batch_data()
    with torch.no_grad(), recorder.recording() as records:
        run_to_depth(model, inputs, samples, taps)
    scores = records.levels(["bbox_head.gfl_cls"])
    assert [tuple(s.shape) for s in scores] == [(2, 5, side, side) for side in LEVEL_SIDES]
    head = records.head("bbox_head")
    assert all(torch.equal(a, b) for a, b in zip(scores, head.cls_scores))
    assert [tuple(b.shape) for b in head.bbox_preds] == [(2, 4 * 9, side, side) for side in LEVEL_SIDES]
    pre, post = records.levels(["bbox_head.cls_convs.1.activate:in"]), records.levels(["bbox_head.cls_convs.1"])
    assert len(pre) == len(post) == 5
    assert all(p.min() < 0 for p in pre), "the input of the in-place ReLU must be recorded before it runs"
    assert all(torch.equal(F.relu(p), q) for p, q in zip(pre, post))
    assert records.describe("bbox_head.gfl_cls") == "#0: 5x16x16, #1: 5x8x8, #2: 5x4x4, #3: 5x2x2, #4: 5x1x1"


def test_token_records_are_described_and_refused_by_feature_distillers():
    from mmdet.models.layers import DetrTransformerEncoder

    encoder = DetrTransformerEncoder(num_layers=2, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=32, num_heads=4, batch_first=True),
        ffn_cfg=dict(embed_dims=32, feedforward_channels=64))).eval()
    recorder = TapRecorder(encoder, ["layers.0", "layers.1"], "teacher")
    tokens = torch.randn(2, 50, 32)
    with torch.no_grad(), recorder.recording() as records:
        memory = encoder(tokens, torch.zeros_like(tokens), key_padding_mask=None)
    assert records.describe("layers.1") == "#0: 50x32 tokens"
    assert torch.equal(records.levels(["layers.1"])[0], memory)
    pkd = build_distiller(dict(type="PKD", student_tap="layers.0"))
    with pytest.raises(ValueError, match=r"compares N x C x H x W maps, but tap 'layers.0' records #0: 50x32 tokens"):
        map_shapes(records, ["layers.0"], pkd)


def test_a_head_distiller_on_a_head_without_distributions_fails_at_build(make_config):
    with pytest.raises(ValueError, match=r"LD 'ld' needs box distributions.*the student's 'bbox_head' is RetinaHead"):
        build(make_config([dict(type="LD")]))


def test_a_feature_distiller_on_a_dense_head_fails_at_build(toy_root, gfl_teacher_ckpt):
    with pytest.raises(TypeError, match=r"Tap 'bbox_head' records a tuple.*use a head distiller"):
        build(gfl_config(toy_root, gfl_teacher_ckpt, [dict(type="PKD", student_tap="bbox_head")]))


def test_cwd_on_a_shared_head_layer(toy_root, gfl_teacher_ckpt):
    model = build(gfl_config(toy_root, gfl_teacher_ckpt, [dict(type="CWD", student_tap="bbox_head.gfl_cls")]))
    assert [(lv.name, lv.student_channels, lv.student_size) for lv in model.distillers[0].levels] == [
        (f"p{i}", 5, (256 // 2**i, 256 // 2**i)) for i in range(3, 8)]
    losses = model.loss(*batch_data())
    assert {f"loss_cwd_p{i}" for i in range(3, 8)} <= set(losses)
    assert all(losses[f"loss_cwd_p{i}"] > 0 for i in range(3, 6))


# --------------------------------------------------------------------------------------------------- LD
def test_ld_equals_mmdet_ld_head_loss(toy_root, gfl_teacher_ckpt):
    model, ld, (student, teacher), batch = head_outputs(toy_root, gfl_teacher_ckpt,
                                                        [dict(type="LD", tau=10.0, vlr_weight=0.0)])
    cfg = Config.fromfile(str(GFL_STUDENT)).model
    ld_head = MODELS.build(dict(cfg.bbox_head, type="LDHead", train_cfg=cfg.train_cfg,
                                loss_ld=dict(type="KnowledgeDistillationKLDivLoss", loss_weight=0.25, T=10)))
    ld_head.load_state_dict(model.student.bbox_head.state_dict())
    gt = [InstanceData(bboxes=b, labels=lb) for b, lb in zip(BOXES, LABELS)]
    reference = ld_head.loss_by_feat(student.cls_scores, student.bbox_preds, gt, batch.img_metas,
                                     soft_targets=teacher.bbox_preds)
    ours = ld(student, teacher, batch)
    assert set(ours) == {"loss_ld"}
    expected = sum(reference["loss_ld"])
    assert expected > 0
    torch.testing.assert_close(ours["loss_ld"], expected, rtol=1e-5, atol=1e-7)


def test_ld_valuable_localization_region(toy_root, gfl_teacher_ckpt):
    distill = [dict(type="LD", vlr_weight=0.25, vlr_iou=0.25)]
    _, ld, (student, teacher), batch = head_outputs(toy_root, gfl_teacher_ckpt, distill)
    losses = ld(student, teacher, batch)
    assert losses["loss_ld_vlr"] > 0 and losses["loss_ld"] > 0
    ld.vlr_iou = 1.01  # no anchor overlaps a box that much: the region is empty
    assert float(ld(student, teacher, batch)["loss_ld_vlr"]) == 0
    assert float(ld(student, student, batch)["loss_ld"]) == pytest.approx(0, abs=1e-6)


# ---------------------------------------------------------------------------------------------- CrossKD
def pre_activation(convs, x: torch.Tensor, count: int) -> torch.Tensor:
    """The output of the ``count``-th ConvModule before its ReLU, by hand (conv, GroupNorm)."""
    for conv in convs[: count - 1]:
        x = conv(x)
    last = convs[count - 1]
    return last.gn(last.conv(x))


def crossed_by_hand(model, inputs: torch.Tensor, activated: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per level: the authors' crossing written out for the toy pair (k = 2), from the conv module's output after
    its ReLU (``activated``, what their in-place ReLU leaves in the kept tensor) or before it."""
    s_head, t_head = model.student.bbox_head, model.teacher.model.bbox_head
    s_feats, t_feats = model.student.extract_feat(inputs), model.teacher.model.extract_feat(inputs)
    levels = []
    for level, (s_x, t_x) in enumerate(zip(s_feats, t_feats)):
        crossed = []
        for s_convs, t_convs in ((s_head.cls_convs, t_head.cls_convs), (s_head.reg_convs, t_head.reg_convs)):
            s_in, t_in = pre_activation(s_convs, s_x, 2), pre_activation(t_convs, t_x, 2)
            if activated:
                s_in, t_in = F.relu(s_in), F.relu(t_in)
            # their align_scale: per channel over N, H, W, unbiased std
            s_flat, t_flat = (f.permute(1, 0, 2, 3).reshape(f.shape[1], -1) for f in (s_in, t_in))
            s_norm = (s_flat - s_flat.mean(-1, keepdim=True)) / (s_flat.std(-1, keepdim=True) + 1e-6)
            aligned = s_norm * t_flat.std(-1, keepdim=True) + t_flat.mean(-1, keepdim=True)
            x = F.relu(aligned.reshape(s_in.shape[1], *s_in.shape[:1], *s_in.shape[2:]).permute(1, 0, 2, 3))
            crossed.append(t_convs[3](t_convs[2](x)))
        levels.append((t_head.gfl_cls(crossed[0]), t_head.scales[level](t_head.gfl_reg(crossed[1]))))
    return levels


@pytest.mark.parametrize("crossing_input", ["activated", "pre_activation"])
def test_crosskd_crossed_predictions_are_the_teacher_head_on_student_features(toy_root, gfl_teacher_ckpt,
                                                                              crossing_input):
    model, crosskd, (student, teacher), _ = head_outputs(
        toy_root, gfl_teacher_ckpt, [dict(type="CrossKD", reused_layer=2, crossing_input=crossing_input)])
    inputs, _ = batch_data()
    cls_scores, bbox_preds = crosskd.crossed(student, teacher)
    with torch.no_grad():
        expected = crossed_by_hand(model, inputs, activated=crossing_input == "activated")
        other = crossed_by_hand(model, inputs, activated=crossing_input != "activated")
    for level, (cls, box) in enumerate(expected):
        torch.testing.assert_close(cls_scores[level], cls, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bbox_preds[level], box, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(cls_scores[0], other[0][0], rtol=1e-3, atol=1e-4)  # the two readings differ


def test_crosskd_crosses_the_activated_head_feature_by_default(toy_root, gfl_teacher_ckpt):
    model, crosskd, (student, teacher), _ = head_outputs(toy_root, gfl_teacher_ckpt, [dict(type="CrossKD",
                                                                                           reused_layer=2)])
    assert crosskd.crossing_input == "activated" and crosskd.box_loss == "kl" and crosskd.box_weight == 4.0
    inputs, _ = batch_data()
    with torch.no_grad():
        for head, records, x in ((model.student.bbox_head, student, model.student.extract_feat(inputs)),
                                 (model.teacher.model.bbox_head, teacher, model.teacher.model.extract_feat(inputs))):
            for level in range(len(LEVEL_SIDES)):
                post = F.relu(pre_activation(head.cls_convs, x[level], 2))
                torch.testing.assert_close(records.cls_feats[level], post)
                reg_post = F.relu(pre_activation(head.reg_convs, x[level], 2))
                torch.testing.assert_close(records.reg_feats[level], reg_post)
                assert records.cls_feats[level].min() >= 0


def test_crosskd_box_term_is_the_authors_kl_summed_over_bins(toy_root, gfl_teacher_ckpt):
    """KnowledgeDistillationKLDivLoss(class_reduction='sum', T=1, loss_weight=4) on the box distributions, weighted
    per side by sigmoid(teacher max logit) where the label weight is > 0, over 4, divided by the sum of weights."""
    model, crosskd, (student, teacher), batch = head_outputs(toy_root, gfl_teacher_ckpt,
                                                             [dict(type="CrossKD", reused_layer=2)])
    losses = crosskd(student, teacher, batch)
    head = model.student.bbox_head
    with torch.no_grad():
        _, bbox_preds = crosskd.crossed(student, teacher)
        sizes = [s.shape[-2:] for s in student.cls_scores]
        anchors, valid = head.get_anchors(sizes, batch.img_metas, device="cpu")
        gt = [InstanceData(bboxes=b, labels=lb) for b, lb in zip(BOXES, LABELS)]
        label_weights = torch.cat([w.reshape(-1) for w in head.get_targets(anchors, valid, gt, batch.img_metas)[2]])
        weights = flat(teacher.cls_scores).max(dim=1).values.sigmoid()
        weights[label_weights == 0] = 0
        crossed_bins, teacher_bins = flat(bbox_preds).reshape(-1, 9), flat(teacher.bbox_preds).reshape(-1, 9)
        p_t = teacher_bins.softmax(1)
        kl = (p_t * (p_t.log() - crossed_bins.log_softmax(1))).sum(1)  # T = 1, summed over the 9 bins
        expected = 4.0 * (kl * weights.repeat_interleave(4)).sum() / 4 / weights.sum()
    torch.testing.assert_close(losses["loss_crosskd_box"], expected, rtol=1e-4, atol=1e-6)
    giou = build_distiller(dict(type="CrossKD", reused_layer=2, box_loss="giou"))
    assert giou.box_weight == 1.0  # the authors' RetinaNet and ATSS setting
    with pytest.raises(ValueError, match=r"box_loss='kl'.*box_weight divided by reg_max \+ 1"):
        build_distiller(dict(type="CrossKD", box_loss="ld"))


def test_crosskd_trains_the_student_through_a_frozen_teacher_head(toy_root, gfl_teacher_ckpt):
    model = build(gfl_config(toy_root, gfl_teacher_ckpt, [dict(type="CrossKD", reused_layer=2)]))
    before = {k: v.clone() for k, v in model.teacher.model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    inputs, samples = batch_data()
    for _ in range(3):
        optimizer.zero_grad()
        losses = model.loss(inputs, samples)
        assert losses["loss_crosskd_cls"] > 0 and losses["loss_crosskd_box"] > 0
        distill = losses["loss_crosskd_cls"] + losses["loss_crosskd_box"]
        head = model.student.bbox_head
        params = [head.cls_convs[1].conv.weight, head.reg_convs[1].conv.weight, head.gfl_cls.weight]
        grads = torch.autograd.grad(distill, params, retain_graph=True, allow_unused=True)
        assert grads[0].abs().sum() > 0 and grads[1].abs().sum() > 0
        assert grads[2] is None, "crossed predictions use the teacher's predictors, not the student's"
        model.parse_losses(losses)[0].backward()
        optimizer.step()
    assert all(p.grad is None for p in model.teacher.model.parameters())
    assert all(torch.equal(v, model.teacher.model.state_dict()[k]) for k, v in before.items())


def test_crosskd_from_the_head_input_with_distribution_mimicking(toy_root, gfl_teacher_ckpt):
    """reused_layer=0 crosses the FPN features into the whole teacher head; box_loss='giou' compares boxes."""
    model, crosskd, (student, teacher), batch = head_outputs(
        toy_root, gfl_teacher_ckpt, [dict(type="CrossKD", reused_layer=0, box_loss="giou")])
    assert crosskd.student_taps() == ["bbox_head", "bbox_head:in"]
    inputs, _ = batch_data()
    with torch.no_grad():
        features = model.student.extract_feat(inputs)
        assert all(torch.equal(a, b) for a, b in zip(student.cls_feats, features))
    losses = crosskd(student, teacher, batch)
    assert losses["loss_crosskd_cls"] > 0 and losses["loss_crosskd_box"] > 0
    same = crosskd(teacher, teacher, batch)  # the teacher crossed with itself reproduces its own predictions
    assert float(same["loss_crosskd_box"]) == pytest.approx(0, abs=1e-5)


def test_crosskd_needs_heads_of_equal_width(toy_root, gfl_teacher_ckpt):
    cfg = gfl_config(toy_root, gfl_teacher_ckpt, [dict(type="CrossKD", reused_layer=2)])
    cfg.model.bbox_head.feat_channels = 32
    with pytest.raises(ValueError, match=r"student's head features \(32 channels\).*\(64 channels\)"):
        build(cfg)


def test_crosskd_past_the_last_head_conv_names_reused_layer(toy_root, gfl_teacher_ckpt):
    cfg = gfl_config(toy_root, gfl_teacher_ckpt, [dict(type="CrossKD", reused_layer=5)])
    with pytest.raises(KeyError, match=r"'bbox_head.cls_convs.4.activate' is not a module .*CrossKD.*reused_layer=5"):
        build(cfg)


def test_head_distillers_reuse_the_students_own_assignment(toy_root, gfl_teacher_ckpt, monkeypatch):
    model = build(gfl_config(toy_root, gfl_teacher_ckpt, [dict(type="LD"), dict(type="BCKD")]))
    head = model.student.bbox_head
    assert model.target_heads == [head]
    inputs, samples = batch_data()
    with torch.no_grad():
        cls_scores = model.student_records(inputs, samples).head("bbox_head").cls_scores
        with recorded_targets([head]) as recorded:
            model.student.loss(inputs, samples)
    assert "get_targets" not in vars(head)  # the class's method again
    fresh = assigned_targets(head, cls_scores, DistillBatch.from_data_samples(samples, (SIZE, SIZE)))
    reused = recorded[("targets", id(head))]
    for field in ("anchors", "strides", "images", "labels", "label_weights", "bbox_targets"):
        assert torch.equal(getattr(reused, field), getattr(fresh, field)), field
    assert reused.num_pos == fresh.num_pos > 1

    calls = []
    get_targets = type(head).get_targets

    def counted(*args, **kwargs):
        calls.append(1)
        return get_targets(*args, **kwargs)

    monkeypatch.setattr(type(head), "get_targets", counted)
    losses = model.loss(inputs, samples)
    assert len(calls) == 1 and losses["loss_ld"] > 0 and losses["loss_bckd_cls"] > 0  # the student's loss only


# ------------------------------------------------------------------------------------------------- BCKD
def test_bckd_terms_against_a_direct_computation(toy_root, gfl_teacher_ckpt):
    """The authors' LDHead.loss_single: NovelKDLoss and GIoU weighted by max_c |p_T - p_S| x label weight, both over
    the positives, both only on levels with positives."""
    model, bckd, (student, teacher), batch = head_outputs(toy_root, gfl_teacher_ckpt, [dict(type="BCKD", beta=1.5)])
    losses = bckd(student, teacher, batch)
    head = model.student.bbox_head
    with torch.no_grad():
        sizes = [s.shape[-2:] for s in student.cls_scores]
        anchors, valid = head.get_anchors(sizes, batch.img_metas, device="cpu")
        gt = [InstanceData(bboxes=b, labels=lb) for b, lb in zip(BOXES, LABELS)]
        anchors, labels, label_weights, _, _, num_pos = head.get_targets(anchors, valid, gt, batch.img_metas)
        # the levels (of the batch) holding positives: the authors skip the others
        with_positives = [bool((lv < head.num_classes).any()) for lv in labels]
        assert True in with_positives and False in with_positives, "the batch must leave some level without positives"
        level_rows = [a.shape[0] * a.shape[1] for a in anchors]
        gate = torch.cat([torch.full((n,), float(g)) for n, g in zip(level_rows, with_positives)])
        weights = torch.cat([w.reshape(-1) for w in label_weights])
        # classification: BCE written out, focal factor |p_s - p_t|^beta, normalised by the positives
        p_s, p_t = flat(student.cls_scores).sigmoid(), flat(teacher.cls_scores).sigmoid()
        bce = -(p_t * torch.log(p_s) + (1 - p_t) * torch.log(1 - p_s))
        per_location = (bce * (p_s - p_t).abs() ** 1.5).sum(1) * weights
        cls, cls_all_levels = (per_location * gate).sum() / num_pos, per_location.sum() / num_pos
        # localization: expected distance per side from the bin probabilities, boxes in stride units, 1 - GIoU
        strides = torch.cat([torch.full((n,), s) for n, s in zip(level_rows, [8, 16, 32, 64, 128])])
        anchor_boxes = torch.cat([a.reshape(-1, 4) for a in anchors])
        centres = (anchor_boxes[:, :2] + anchor_boxes[:, 2:]) / 2 / strides[:, None]

        def boxes(maps):
            distances = (flat(maps).reshape(-1, 4, 9).softmax(-1) * torch.arange(9.0)).sum(-1)
            return torch.cat([centres - distances[:, :2], centres + distances[:, 2:]], dim=1)

        b_s, b_t = boxes(student.bbox_preds), boxes(teacher.bbox_preds)
        corner_min, corner_max = torch.maximum(b_s[:, :2], b_t[:, :2]), torch.minimum(b_s[:, 2:], b_t[:, 2:])
        overlap = (corner_max - corner_min).clamp(min=0).prod(1)
        area = lambda b: (b[:, 2:] - b[:, :2]).prod(1)  # noqa: E731
        union = area(b_s) + area(b_t) - overlap
        enclosing = (torch.maximum(b_s[:, 2:], b_t[:, 2:]) - torch.minimum(b_s[:, :2], b_t[:, :2])).prod(1)
        giou = overlap / union - (enclosing - union) / enclosing
        u = (p_t - p_s).abs().max(dim=1).values * weights
        loc, loc_all_levels = (u * gate * (1 - giou)).sum() / num_pos, (u * (1 - giou)).sum() / num_pos
    torch.testing.assert_close(losses["loss_bckd_cls"], cls, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(losses["loss_bckd_loc"], 4.0 * loc, rtol=1e-4, atol=1e-6)
    assert cls > 0 and loc > 0 and cls_all_levels > cls and loc_all_levels > loc
    bckd.positive_levels_only = False
    every_level = bckd(student, teacher, batch)
    torch.testing.assert_close(every_level["loss_bckd_cls"], cls_all_levels, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(every_level["loss_bckd_loc"], 4.0 * loc_all_levels, rtol=1e-4, atol=1e-6)


def test_bckd_localization_is_zero_where_student_and_teacher_agree(toy_root, gfl_teacher_ckpt):
    _, bckd, (student, teacher), batch = head_outputs(toy_root, gfl_teacher_ckpt, [dict(type="BCKD")])
    same = bckd(teacher, teacher, batch)  # |p_T - p_S| = 0 everywhere: no localization weight
    assert float(same["loss_bckd_loc"]) == 0


def test_head_distillers_train_end_to_end_with_named_losses(toy_root, gfl_teacher_ckpt):
    distill = [dict(type="LD", vlr_weight=0.25), dict(type="BCKD"), dict(type="CrossKD", reused_layer=2),
               dict(type="PKD")]
    model = build(gfl_config(toy_root, gfl_teacher_ckpt, distill))
    losses = model.loss(*batch_data())
    names = {"loss_ld", "loss_ld_vlr", "loss_bckd_cls", "loss_bckd_loc", "loss_crosskd_cls", "loss_crosskd_box"}
    assert names <= set(losses) and {f"loss_pkd_p{i}" for i in range(3, 8)} <= set(losses)
    assert all(torch.isfinite(losses[k]) and losses[k] > 0 for k in names)
    assert list(model._taps("teacher")) == ["bbox_head", "bbox_head.cls_convs.1.activate",
                                            "bbox_head.reg_convs.1.activate", "neck"]
    assert not any(k.startswith("teacher") for k in model.state_dict())


def test_a_1x1_level_with_batch_1_gives_finite_losses(toy_root, gfl_teacher_ckpt):
    """P7 of a 128 px image is 1 x 1: with one image a channel holds one value, whose unbiased std is undefined.
    PKD, DFMSD's alignment and CrossKD's re-scaling take it as 0 (that level adds no PKD loss) and warn."""
    distill = [dict(type="PKD"), dict(type="DFMSD", align_weight=1.0), dict(type="CrossKD", reused_layer=2)]
    model = build(gfl_config(toy_root, gfl_teacher_ckpt, distill))
    inputs, samples = batch_data(n=1)
    with pytest.warns(UserWarning, match="one value per channel"):
        losses = model.loss(inputs, samples)
    distill_losses = {k: v for k, v in losses.items() if k.startswith(("loss_pkd", "loss_dfmsd", "loss_crosskd"))}
    assert {"loss_pkd_p7", "loss_dfmsd_rec_p7", "loss_dfmsd_align_p7", "loss_crosskd_box"} <= set(distill_losses)
    assert all(torch.isfinite(v) for v in distill_losses.values()), distill_losses
    for name in ("loss_pkd_p7", "loss_dfmsd_align_p7"):  # standardised to 0 on both sides
        assert float(distill_losses[name]) == 0 and float(distill_losses[name.replace("p7", "p3")]) > 0
    model.parse_losses(losses)[0].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.student.parameters() if p.grad is not None)


def test_gfl_toy_configs_pair_the_heads():
    student, teacher = Config.fromfile(str(GFL_STUDENT)).model, Config.fromfile(str(GFL_TEACHER)).model
    assert student.type == teacher.type == "GFL"
    assert (student.bbox_head.stacked_convs, teacher.bbox_head.stacked_convs) == (2, 4)
    keys = ("num_classes", "feat_channels", "reg_max", "anchor_generator")
    assert all(student.bbox_head[k] == teacher.bbox_head[k] for k in keys)


# ------------------------------------------------------------------------------------------------ RTMDet
RTMDET_STUDENT = ROOT / "configs/toy/rtmdet_toy_student.py"
RTMDET_TEACHER = ROOT / "configs/toy/rtmdet_toy_teacher.py"


@pytest.fixture(scope="module")
def rtmdet_teacher_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    return save_random_checkpoint(RTMDET_TEACHER, tmp_path_factory.mktemp("rtmdet_teacher") / "teacher.pth")


def test_rtmdet_pair_distils_neck_and_class_maps(toy_root, rtmdet_teacher_ckpt):
    distill = Config.fromfile(str(ROOT / "configs/toy/pkd_cwd_rtmdet_toy.py")).distill
    cfg = toy_distill_config(toy_root, rtmdet_teacher_ckpt, distill, student=RTMDET_STUDENT, teacher=RTMDET_TEACHER)
    model = build(cfg)
    pkd, cwd = model.distillers
    assert [(lv.student_channels, lv.teacher_channels) for lv in pkd.levels] == [(32, 64)] * 3
    assert [(lv.name, lv.student_channels, lv.teacher_channels) for lv in cwd.levels] == [
        ("p3", 5, 5), ("p4", 5, 5), ("p5", 5, 5)]
    losses = model.loss(*batch_data())
    names = [f"loss_{d}_p{i}" for d in ("pkd", "cwd") for i in (3, 4, 5)]
    assert all(losses[k] > 0 for k in names)
    model.parse_losses(losses)[0].backward()
    assert model.student.bbox_head.rtm_cls[0].weight.grad.abs().sum() > 0


def test_head_distillers_refuse_rtmdet_heads_by_name(toy_root, rtmdet_teacher_ckpt):
    cfg = toy_distill_config(toy_root, rtmdet_teacher_ckpt, [dict(type="BCKD")], student=RTMDET_STUDENT,
                             teacher=RTMDET_TEACHER)
    with pytest.raises(ValueError, match=r"BCKD 'bckd' needs box distributions .*\['GFLHead'\].* RTMDetSepBNHead"):
        build(cfg)


def test_rtmdet_toy_configs_build_their_optimizer(toy_root, rtmdet_teacher_ckpt):
    """RTMDet's head shares its convs across levels; each parameter must go into one optimizer group."""
    distill = Config.fromfile(str(ROOT / "configs/toy/pkd_cwd_rtmdet_toy.py")).distill
    pair = toy_distill_config(toy_root, rtmdet_teacher_ckpt, distill, student=RTMDET_STUDENT, teacher=RTMDET_TEACHER)
    for config, model in ((RTMDET_TEACHER, build_plain(RTMDET_TEACHER)), (RTMDET_STUDENT, build(pair))):
        optimizer = build_optim_wrapper(model, Config.fromfile(str(config)).optim_wrapper).optimizer
        params = [p for group in optimizer.param_groups for p in group["params"]]
        assert len(params) == len({id(p) for p in params}) == sum(p.requires_grad for p in model.parameters())


def test_visualization_draws_head_distillers_per_head_level(toy_root, gfl_teacher_ckpt, tmp_path):
    from kdtools.visualization import collect_maps, draw

    model = build(gfl_config(toy_root, gfl_teacher_ckpt, [dict(type="CrossKD", reused_layer=2)])).eval()
    inputs, samples = batch_data()
    with torch.no_grad():
        maps = collect_maps(model, inputs, samples)
        student = model.student_records(inputs, samples).head("bbox_head").cls_scores
    assert list(maps) == [f"head level {i}" for i in range(5)]
    level = maps["head level 0"]
    assert set(level) == {"student max class prob", "teacher max class prob", "crosskd: |teacher - student|"}
    assert level["student max class prob"].shape == (LEVEL_SIDES[0], LEVEL_SIDES[0])
    np.testing.assert_allclose(level["student max class prob"], student[0][0].sigmoid().amax(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(level["crosskd: |teacher - student|"],
                               np.abs(level["teacher max class prob"] - level["student max class prob"]), atol=1e-6)
    with pytest.raises(ValueError, match=r"Nothing to draw for levels \['p3'\].*'head level 0'"):
        draw(np.zeros((SIZE, SIZE, 3)), maps, str(tmp_path / "x.png"), levels=["p3"])
