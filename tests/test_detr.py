"""Query distillation for DETRs: records, matching, injected points, losses, errors and a toy DINO run."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import toy_distill_config
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_convert, generalized_box_iou

from kdtools.config import expand_distill_config
from kdtools.detectors.queries import decode, query_outputs
from kdtools.distillers.detrdistill import DETRDistill, hungarian, match_cost
from kdtools.distillers.kddetr import point_losses

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ROOT / "configs/toy/dino_toy_student.py"
TEACHER = ROOT / "configs/toy/dino_toy_teacher.py"
QUERIES = 100  # the toy DINO's matching queries


@pytest.fixture(scope="module")
def dino_teacher(tmp_path_factory) -> str:
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(TEACHER)).model)
    model.init_weights()
    for branch in model.bbox_head.reg_branches:  # boxes that differ from the reference points (DINO inits zero)
        torch.nn.init.normal_(branch[-1].weight, std=0.01)
    path = tmp_path_factory.mktemp("dino") / "teacher.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return str(path)


def dino_config(toy_root: str, teacher: str, distill: list[dict]) -> Config:
    return toy_distill_config(toy_root, teacher, distill, student=STUDENT, teacher=TEACHER)


def built(toy_root: str, teacher: str, distill: list[dict]):
    cfg = dino_config(toy_root, teacher, distill)
    torch.manual_seed(0)
    model = MODELS.build(expand_distill_config(cfg).model)
    model.init_weights()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    return model.train(), data["inputs"], data["data_samples"]


def test_student_records_leave_the_denoising_queries_out(toy_root, dino_teacher):
    model, inputs, samples = built(toy_root, dino_teacher, [dict(type="KDDETR")])
    distiller = model.distillers[0]
    with model.student_taps.recording() as records:
        model.student.loss(inputs, samples)
    head = records.call("bbox_head:call")
    total = head.output[0].shape[2]
    student = query_outputs(records, "bbox_head", "decoder")
    mask = records.call("decoder:call").kwargs["self_attn_mask"]
    dn = total - QUERIES
    assert dn > 0 and student.num_denoising == dn and mask.shape == (total, total)
    assert mask[dn:, :dn].all() and not mask[dn:, dn:].any()  # DINO's mask: matching queries never see denoising
    assert student.cls_scores.shape == (2, 2, QUERIES, 5) and student.boxes.shape == (2, 2, QUERIES, 4)
    assert torch.equal(student.cls_scores, head.output[0][:, :, dn:])  # the matching part, the last 100
    teacher = query_outputs(model.teacher.records(inputs, samples), "bbox_head", "decoder")
    assert teacher.num_denoising == 0 and teacher.cls_scores.shape == (3, 2, QUERIES, 5)
    assert distiller.layer_map == [2, 2]  # KD-DETR: every student layer from the teacher's last


def direct_cost(s_logits, s_boxes, t_probs, t_boxes, scale):
    s = s_logits.sigmoid()
    bce = -(t_probs[None] * s[:, None].log() + (1 - t_probs[None]) * (1 - s[:, None]).log()).sum(-1)
    l1 = (s_boxes[:, None] - t_boxes[None]).abs().sum(-1)
    giou = generalized_box_iou(box_convert(s_boxes, "cxcywh", "xyxy") * scale,
                               box_convert(t_boxes, "cxcywh", "xyxy") * scale)
    return bce + 5 * l1 - 2 * giou


def random_predictions(q: int, k: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(q, k, generator=g)
    centre, size = torch.rand(q, 2, generator=g) * 0.6 + 0.2, torch.rand(q, 2, generator=g) * 0.3 + 0.05
    return logits, torch.cat([centre, size], dim=1)


def test_hungarian_matching_equals_scipy_on_the_direct_cost():
    s_logits, s_boxes = random_predictions(12, seed=0)
    t_logits, t_boxes = random_predictions(12, seed=1)
    scale = torch.tensor([128.0, 96.0, 128.0, 96.0])
    cost = match_cost(s_logits, s_boxes, t_logits.sigmoid(), t_boxes, scale, (1.0, 5.0, 2.0))
    expected = direct_cost(s_logits, s_boxes, t_logits.sigmoid(), t_boxes, scale)
    torch.testing.assert_close(cost, expected, rtol=1e-4, atol=1e-4)
    rows, cols = hungarian(cost)
    ref_rows, ref_cols = linear_sum_assignment(expected.numpy())
    assert rows.tolist() == ref_rows.tolist() and cols.tolist() == ref_cols.tolist()
    assert sorted(cols.tolist()) == list(range(12))  # equal counts: a permutation


def test_detrdistill_logits_loss_matches_a_direct_computation_and_is_zero_on_itself(toy_root, dino_teacher):
    model, inputs, samples = built(toy_root, dino_teacher, [dict(type="DETRDistill", layer_map=[1, 2])])
    distiller = model.distillers[0]
    teacher = query_outputs(model.teacher.records(inputs, samples), "bbox_head", "decoder")
    from kdtools.distillers.base import DistillBatch
    from kdtools.distillers.detrdistill import image_scale

    batch = DistillBatch.from_data_samples(samples, tuple(inputs.shape[-2:]))
    scale = image_scale(batch, inputs.device)
    losses = distiller.logits_loss(teacher, teacher, 2, 2, distiller.assign(teacher, teacher, 2, 2, scale), scale)
    # (the teacher against itself)
    assert losses["l1"] < 1e-6 and losses["iou"] < 1e-5
    probs = teacher.cls_scores[2].sigmoid()
    torch.testing.assert_close(losses["cls"], F.binary_cross_entropy(probs, probs, reduction="sum") / (2 * QUERIES))
    # against another layer: the direct loss on the matching scipy finds
    losses = distiller.logits_loss(teacher, teacher, 1, 2, distiller.assign(teacher, teacher, 1, 2, scale), scale)
    s_logits, s_boxes, t_probs, t_boxes = teacher.cls_scores[1], teacher.boxes[1], probs, teacher.boxes[2]
    bce = l1 = giou = 0.0
    for i in range(2):
        rows, cols = linear_sum_assignment(direct_cost(s_logits[i], s_boxes[i], t_probs[i], t_boxes[i],
                                                       scale[i]).numpy())
        bce += F.binary_cross_entropy_with_logits(s_logits[i, rows], t_probs[i, cols], reduction="sum")
        l1 += (s_boxes[i, rows] - t_boxes[i, cols]).abs().sum()
        s_pixel, t_pixel = (box_convert(b, "cxcywh", "xyxy") * scale[i] for b in (s_boxes[i, rows], t_boxes[i, cols]))
        giou += (1 - generalized_box_iou(s_pixel, t_pixel).diag()).sum()
    torch.testing.assert_close(losses["cls"], bce / 200, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(losses["l1"], 5 * l1 / 200, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(losses["iou"], 2 * giou / 200, rtol=1e-4, atol=1e-5)


def test_query_prior_assignment_on_the_students_own_queries_is_its_detection_loss(toy_root, dino_teacher):
    """Decoded as a group of their own, the student's own matching queries give back its own predictions, so
    the query-prior loss on them equals mmdet's detection loss of the student's matching queries, layer by layer;
    on the teacher's queries it trains the student's decoder and head, not its content queries."""
    from kdtools.distillers.base import DistillBatch

    model, inputs, samples = built(toy_root, dino_teacher, [dict(type="DETRDistill", layer_map=[1, 2],
                                                                 query_prior_weight=1.0)])
    distiller = model.distillers[0]
    for branch in model.student.bbox_head.reg_branches:  # refined references that differ from the initial ones
        torch.nn.init.normal_(branch[-1].weight, std=0.01)
    with model.student_taps.recording() as records:
        detection = model.student.loss(inputs, samples)
    student = query_outputs(records, "bbox_head", "decoder")
    batch = DistillBatch.from_data_samples(samples, tuple(inputs.shape[-2:]))
    own = distiller.query_prior_loss(student, student, batch)
    assert sorted(own) == sorted(f"qpa_{k}_d{layer}" for k in ("cls", "bbox", "iou") for layer in (0, 1))
    for key, mmdet_key in (("cls", "loss_cls"), ("bbox", "loss_bbox"), ("iou", "loss_iou")):
        torch.testing.assert_close(own[f"qpa_{key}_d1"], detection[mmdet_key].reshape(()), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(own[f"qpa_{key}_d0"], detection[f"d0.{mmdet_key}"].reshape(()), rtol=1e-4, atol=1e-5)
    model.zero_grad()
    teacher = query_outputs(model.teacher.records(inputs, samples), "bbox_head", "decoder")
    student = query_outputs(model.student_records(inputs, samples), "bbox_head", "decoder")
    sum(distiller.query_prior_loss(student, teacher, batch).values()).backward()
    assert model.student.bbox_head.cls_branches[0].weight.grad.abs().sum() > 0
    assert model.student.decoder.layers[0].cross_attn.sampling_offsets.weight.grad.abs().sum() > 0
    assert model.student.query_embedding.weight.grad is None
    assert all(p.grad is None for p in model.teacher.model.parameters())
    model.zero_grad()
    with torch.no_grad():  # as tools/benchmark.py records them
        s_records, t_records = model.student_records(inputs, samples), model.teacher.records(inputs, samples)
    distiller.training_only_pass(s_records, t_records)()  # the extra pass alone, forward and backward
    assert model.student.decoder.layers[0].cross_attn.sampling_offsets.weight.grad.abs().sum() > 0
    assert model.student.backbone.conv1.weight.grad is None  # it stops at the encoder memory
    assert DETRDistill().training_only_pass(s_records, t_records) is None  # no extra pass without it
    losses = model.loss(inputs, samples)
    assert {f"loss_detrdistill_qpa_{k}_d{layer}" for k in ("cls", "bbox", "iou") for layer in (0, 1)} <= set(losses)
    plain, inputs, samples = built(toy_root, dino_teacher, [dict(type="DETRDistill", layer_map=[1, 2])])
    assert not any("qpa" in key for key in plain.loss(inputs, samples))  # off by default


def test_query_contrast_is_infonce_of_the_matched_embeddings_and_trains_the_student_and_its_head(
        toy_root, dino_teacher):
    """Each teacher query's positive is the student query it is matched to (the logits assignment), its negatives
    every other matched student query of the batch; the head and the student's decoder learn, the teacher not."""
    from kdtools.distillers.base import DistillBatch
    from kdtools.distillers.detrdistill import QueryContrast, image_scale

    model, inputs, samples = built(toy_root, dino_teacher, [dict(type="DETRDistill", layer_map=[1, 2],
                                                                 contrastive_weight=0.2, feature_weight=0)])
    distiller = model.distillers[0]
    assert isinstance(distiller.contrast, QueryContrast) and distiller.contrast.temperature == 0.07
    assert any(key.startswith("distillers.0.contrast.") for key in model.state_dict())  # saved with the model
    teacher = query_outputs(model.teacher.records(inputs, samples), "bbox_head", "decoder")
    student = query_outputs(model.student_records(inputs, samples), "bbox_head", "decoder")
    batch = DistillBatch.from_data_samples(samples, tuple(inputs.shape[-2:]))
    losses = distiller.query_loss(student, teacher, batch)
    assert {"cl_d0", "cl_d1"} <= set(losses)
    pairs = distiller.assign(student, teacher, 1, 2, image_scale(batch, inputs.device))
    assert len(pairs.image) == 2 * QUERIES  # equal query counts: every student query is matched
    head = distiller.contrast
    z_s = F.normalize(head.student(student.hidden_states[1][pairs.image, pairs.student]), dim=1)
    z_t = F.normalize(head.teacher(teacher.hidden_states[2][pairs.image, pairs.teacher]), dim=1)
    similarity = z_t @ z_s.T / 0.07
    infonce = (similarity.logsumexp(dim=1) - similarity.diag()).mean()
    torch.testing.assert_close(losses["cl_d1"], 0.2 * infonce, rtol=1e-5, atol=1e-6)
    shuffled = pairs.teacher.roll(1)  # a wrong pairing gives another loss: the positives are the matched ones
    z_wrong = F.normalize(head.teacher(teacher.hidden_states[2][pairs.image, shuffled]), dim=1)
    wrong = z_wrong @ z_s.T / 0.07
    assert not torch.allclose((wrong.logsumexp(dim=1) - wrong.diag()).mean(), infonce)
    model.zero_grad()
    losses["cl_d1"].backward()
    assert head.student[0].weight.grad.abs().sum() > 0 and head.teacher[0].weight.grad.abs().sum() > 0
    assert model.student.decoder.layers[1].ffn.layers[1].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.model.parameters())
    assert {"loss_detrdistill_cl_d0", "loss_detrdistill_cl_d1"} <= set(model.loss(inputs, samples))
    plain, inputs, samples = built(toy_root, dino_teacher, [dict(type="DETRDistill", layer_map=[1, 2])])
    assert plain.distillers[0].contrast is None  # off by default: no head, no loss
    assert not any("_cl_" in key for key in plain.loss(inputs, samples))


def test_query_contrast_fits_unequal_widths_and_a_later_teacher_must_fit_it():
    from types import SimpleNamespace

    def outputs(width: int) -> SimpleNamespace:
        return SimpleNamespace(hidden_states=torch.zeros(2, 1, 3, width))

    distiller = DETRDistill(contrastive_weight=0.2, contrastive_channels=64)
    distiller.build_contrast(outputs(256), outputs(384))  # a wider teacher: its own projection
    head = distiller.contrast
    assert (head.student[0].in_features, head.teacher[0].in_features, head.student[-1].out_features) == (256, 384, 64)
    distiller.build_contrast(outputs(256), outputs(384))  # a stage teacher that fits keeps the trained head
    assert distiller.contrast is head
    with pytest.raises(ValueError, match=r"embeddings \(256, 384\) wide; this teacher's pair is \(256, 256\)"):
        distiller.build_contrast(outputs(256), outputs(256))


def boxes(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Random normalised cx, cy, w, h boxes inside the image."""
    centres, sizes = torch.rand(*shape, 2, generator=g), torch.rand(*shape, 2, generator=g)
    return torch.cat([centres * 0.5 + 0.25, sizes * 0.2 + 0.05], -1)


def test_detrdistill_feature_loss_matches_the_authors_computation(toy_root, dino_teacher):
    """The target-aware mask as the authors' distiller builds it: top-100 (query, class) pairs of the teacher's
    layer, score x max IoU with GT, the score-weighted cosine of the teacher's embeddings with its neck features,
    clamped at 0.01 and divided by each image's maximum; MSE of the masked features, summed over levels."""
    from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps

    from kdtools.distillers.base import DistillBatch
    from kdtools.distillers.detrdistill import image_scale

    model, inputs, samples = built(toy_root, dino_teacher, [dict(type="DETRDistill", layer_map=[1, 2])])
    distiller = model.distillers[0]
    teacher = query_outputs(model.teacher.records(inputs, samples), "bbox_head", "decoder", "neck")
    student = query_outputs(model.student_records(inputs, samples), "bbox_head", "decoder", "neck")
    batch = DistillBatch.from_data_samples(samples, tuple(inputs.shape[-2:]))
    scale = image_scale(batch, inputs.device)
    loss = distiller.feature_loss(teacher, 2, distiller.level_pairs(student, teacher), batch, scale)
    expected = 0.0
    for level in range(4):
        f_t, f_s = teacher.features[level], student.features[level]
        masks = []
        for i in range(2):
            probs = teacher.cls_scores[2, i].sigmoid()
            scores, index = probs.flatten().topk(100)
            query = index // probs.shape[1]
            boxes = bbox_cxcywh_to_xyxy(teacher.boxes[2, i, query]) * scale[i]
            score = scores * bbox_overlaps(boxes, batch.gt_bboxes[i]).max(dim=-1)[0]
            q = F.normalize(teacher.hidden_states[2, i, query], dim=-1)
            mask = torch.einsum("nc,chw,n->hw", q, F.normalize(f_t[i], dim=0), score).clamp(min=1e-2)
            masks.append(mask / mask.max())
        mask = torch.stack(masks)[:, None]
        expected = expected + F.mse_loss(mask * f_t, mask * f_s)
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-6)
    assert loss > 0


def test_kddetr_point_losses_match_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    s_logits, t_logits = torch.randn(2, 3, 7, 5, generator=g), torch.randn(3, 7, 5, generator=g)
    s_boxes, t_boxes = boxes((2, 3, 7), g), boxes((3, 7), g)
    cls, l1, iou = point_losses(s_logits, s_boxes, t_logits, t_boxes, 10.0)
    w = t_logits.sigmoid().max(-1).values
    p = (t_logits / 10).softmax(-1)
    kl = (p * (p.log() - (s_logits / 10).log_softmax(-1))).mean(-1) * 100
    torch.testing.assert_close(cls, (kl * w).sum())
    torch.testing.assert_close(l1, ((s_boxes - t_boxes).abs().mean(-1) * w).sum() / w.sum())
    xyxy = lambda b: box_convert(b.reshape(-1, 4), "cxcywh", "xyxy")  # noqa: E731
    giou = torch.stack([generalized_box_iou(xyxy(s_boxes[layer]), xyxy(t_boxes)).diag() for layer in range(2)])
    torch.testing.assert_close(iou, ((1 - giou.view(2, 3, 7)) * w).sum() / w.sum())
    cls, l1, iou = point_losses(t_logits[None], t_boxes[None], t_logits, t_boxes, 10.0)
    assert cls.abs() < 1e-4 and l1 == 0 and iou.abs() < 1e-6  # KL of a distribution with itself (fp32)


def test_injected_points_leave_the_student_predictions_unchanged(toy_root, dino_teacher):
    model, inputs, samples = built(toy_root, dino_teacher, [dict(type="KDDETR")])
    student = model.student.eval()
    with torch.no_grad():
        before = student._forward(inputs, samples)
        own = query_outputs(model.student_records(inputs, samples), "bbox_head", "decoder")
        points = torch.rand(2, 30, 4) * 0.5 + 0.25
        logits, boxes, _ = decode(own, torch.zeros(2, 30, 256), points)
        after = student._forward(inputs, samples)
    assert logits.shape == (2, 2, 30, 5) and boxes.shape == (2, 2, 30, 4)
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    assert torch.equal(own.cls_scores, before[0])  # the recorded pass is the model's own


def test_training_steps_move_the_student_and_never_the_teacher(toy_root, dino_teacher):
    model, inputs, samples = built(toy_root, dino_teacher, [dict(type="DETRDistill", layer_map=[1, 2]),
                                                          dict(type="KDDETR")])
    teacher = {k: v.clone() for k, v in model.teacher.model.state_dict().items()}
    student = {k: v.clone() for k, v in model.student.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(2):
        losses = model.loss(inputs, samples)
        distill = {k: v for k, v in losses.items() if k.startswith(("loss_detrdistill", "loss_kddetr"))}
        assert len(distill) == 2 * 4 + 6 and all(torch.isfinite(v) for v in distill.values())
        optimizer.zero_grad()
        sum(distill.values()).backward()
        assert model.student.query_embedding.weight.grad.abs().sum() > 0
        optimizer.step()
    assert all(torch.equal(teacher[k], v) for k, v in model.teacher.model.state_dict().items())
    assert any(not torch.equal(student[k], v) for k, v in model.student.state_dict().items())
    assert all(p.grad is None for p in model.teacher.model.parameters())


def test_a_query_distiller_on_a_dense_detector_names_it(make_config):
    with pytest.raises(ValueError, match="the student is a RetinaNet, not a DETR"):
        MODELS.build(expand_distill_config(make_config([dict(type="KDDETR")])).model)


def test_the_shuffled_control_refuses_query_records(toy_root, dino_teacher):
    cfg = dino_config(toy_root, dino_teacher, [dict(type="KDDETR")])
    cfg.teacher_control = "shuffled"
    with pytest.raises(ValueError, match="not batch-first. Use 'random' with query distillers"):
        MODELS.build(expand_distill_config(cfg).model)


def test_unequal_decoder_layers_need_a_layer_map(toy_root, dino_teacher):
    with pytest.raises(ValueError, match=r"2 decoder layers, the teacher 3. Give layer_map=\[...\].*\[1, 2\]"):
        built(toy_root, dino_teacher, [dict(type="DETRDistill")])
    with pytest.raises(ValueError, match="layer_map=\\[0, 3\\] must give one teacher layer"):
        built(toy_root, dino_teacher, [dict(type="DETRDistill", layer_map=[0, 3])])
    assert DETRDistill(layer_map=[0, 2]).checked_layer_map(2, 3) == [0, 2]
    with pytest.raises(ValueError, match=r"teacher levels \[1, 2, 3, 4\] .*Give teacher_levels"):
        built(toy_root, dino_teacher, [dict(type="DETRDistill", layer_map=[1, 2], teacher_levels=[1, 2, 3, 4])])


def test_train_py_trains_the_toy_dino_pair(toy_root, dino_teacher, tmp_path):
    options = [f"teacher.checkpoint={dino_teacher}", "teacher_check=None", "train_cfg.max_epochs=1",
               f"work_dir={tmp_path}", "train_dataloader.batch_size=4"]
    for loader in ("train_dataloader", "val_dataloader"):
        options += [f"{loader}.dataset.data_root={toy_root}", f"{loader}.num_workers=0",
                    f"{loader}.persistent_workers=False"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/train.py"), str(ROOT / "configs/toy/kddetr_dino_toy.py"), "--cfg-options",
         *options], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "loss_kddetr_general_cls" in log and "Epoch(val) [1]" in log
    assert (tmp_path / "epoch_1.pth").exists()
