"""Numeric tests of the attention-masked distillers (DMKD, DFMSD) and the RND-style predictor."""
from __future__ import annotations

import pytest
import torch

import kdtools.distillers.dfmsd  # noqa: F401  (registers DFMSD)
import kdtools.distillers.dmkd  # noqa: F401  (registers DMKD)
import kdtools.distillers.rnd  # noqa: F401  (registers RND)
from kdtools.distillers.base import DistillBatch, LevelPair
from kdtools.distillers.pkd import standardise_channels
from kdtools.modules.attention import spatial_attention
from kdtools.modules.masking import select_masked
from kdtools.registry import build_distiller

N, C, H, W = 2, 8, 4, 4
INPUT = (32, 32)  # stride 8 onto the 4 x 4 maps
RATIO = 0.65  # masks round(0.65 * 16) = 10 positions and round(0.65 * 8) = 5 channels


def make(cfg: dict, channels: int = C, size: tuple[int, int] = (H, W)):
    distiller = build_distiller(cfg)
    distiller.setup([LevelPair("p3", 0, 0, channels, channels, size, size)])
    return distiller


def make_batch() -> DistillBatch:
    """Image 0 has one box covering cells rows 0-2, cols 0-2; image 1 has none."""
    boxes = [torch.tensor([[0.0, 0.0, 12.0, 12.0]]), torch.zeros(0, 4)]
    return DistillBatch(boxes, [INPUT, INPUT], INPUT)


def ranked_teacher(position_rank: torch.Tensor, channel_rank: torch.Tensor) -> torch.Tensor:
    """Teacher whose |values| factor as position x channel scale, with random signs.

    ``position_rank`` (N x H*W) and ``channel_rank`` (N x C) are distinct positive numbers; the channel mean
    of |F| orders positions like ``position_rank``, the spatial mean orders channels like ``channel_rank``.
    """
    n = position_rank.shape[0]
    signs = torch.randint(0, 2, (n, C, H, W), generator=torch.Generator().manual_seed(7)) * 2 - 1
    magnitude = 0.05 * position_rank.reshape(n, 1, H, W) * (channel_rank / C).reshape(n, C, 1, 1)
    return signs * magnitude


def random_ranks(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    positions = torch.stack([torch.randperm(H * W, generator=g) for _ in range(N)]).float() + 1
    channels = torch.stack([torch.randperm(C, generator=g) for _ in range(N)]).float() + 1
    return positions, channels


def top_keep(rank: torch.Tensor, k: int) -> torch.Tensor:
    """Keep mask (1 kept, 0 masked) with the k highest entries of each row masked, by argsort."""
    keep = torch.ones_like(rank)
    top = rank.argsort(dim=1, descending=True)[:, :k]
    return keep.scatter(1, top, 0.0)


def features(seed: int = 0, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, C, H, W, generator=g), torch.randn(n, C, H, W, generator=g) * 2 + 0.5


# ----------------------------------------------------------------------------------------------- DMKD


@pytest.mark.parametrize("rule", ["topk", "threshold"])
def test_dmkd_masks_the_top_attention_positions_and_channels(rule):
    positions, channels = random_ranks()
    teacher = ranked_teacher(positions, channels)
    distiller = make(dict(type="DMKD", mask_ratio=RATIO, mask_rule=rule))
    spatial, channel = distiller.masks(teacher, make_batch())
    assert torch.equal(spatial.reshape(N, H * W), top_keep(positions, 10))
    assert torch.equal(channel.reshape(N, C), top_keep(channels, 5))


def test_sample_rule_masks_k_entries_preferring_high_attention():
    torch.manual_seed(0)
    scores = torch.linspace(0.1, 3.0, 16).repeat(4000, 1)
    masked = select_masked(scores, 0.25, "sample")
    assert (masked.sum(dim=1) == 4).all()
    frequency = masked.float().mean(dim=0)
    assert frequency[-4:].mean() > 2 * frequency[:4].mean()
    assert frequency[-1] > frequency[0] + 0.2

    positions, channels = random_ranks()
    distiller = make(dict(type="DMKD", mask_ratio=RATIO, mask_rule="sample"))
    spatial, channel = distiller.masks(ranked_teacher(positions, channels), make_batch())
    assert ((1 - spatial).sum(dim=(1, 2, 3)) == 10).all()
    assert ((1 - channel).sum(dim=(1, 2, 3)) == 5).all()


def test_dmkd_loss_matches_closed_form():
    torch.manual_seed(0)
    positions, channels = random_ranks(1)
    teacher = ranked_teacher(positions, channels)
    student = torch.randn(N, C, H, W)
    distiller = make(dict(type="DMKD", alpha_dmkd=3e-2, mask_ratio=RATIO))
    keep_s = top_keep(positions, 10).reshape(N, 1, H, W)
    keep_c = top_keep(channels, 5).reshape(N, C, 1, 1)
    with torch.no_grad():
        fused = 0.5 * distiller.spatial_generators[0](student * keep_s) + 0.5 * distiller.channel_generators[0](
            student * keep_c
        )
        expected = 3e-2 * ((teacher - fused) ** 2).sum() / N
        losses = distiller([student], [teacher], make_batch())
    assert list(losses) == ["loss_dmkd_p3"]
    torch.testing.assert_close(losses["loss_dmkd_p3"], expected)


def test_dmkd_fusion_weights_train():
    student, teacher = features()
    distiller = make(dict(type="DMKD", alpha_dmkd=1.0))
    logits = distiller.fusion_logits[0]
    assert any(p is logits for p in distiller.parameters())
    torch.testing.assert_close(distiller.fusion_weights(0), torch.tensor([0.5, 0.5]))
    before = logits.detach().clone()
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.1)
    sum(distiller([student], [teacher], make_batch()).values()).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(logits.detach(), before)
    torch.testing.assert_close(distiller.fusion_weights(0).sum(), torch.tensor(1.0))


def test_dmkd_sigmoid_and_fixed_fusion():
    sigmoid = make(dict(type="DMKD", fusion="sigmoid"))
    torch.testing.assert_close(sigmoid.fusion_weights(0), torch.tensor([0.5, 0.5]))
    with torch.no_grad():
        sigmoid.fusion_logits[0].copy_(torch.tensor([2.0, 2.0]))
    assert sigmoid.fusion_weights(0).sum() > 1.5  # independent gates, not normalised
    fixed = make(dict(type="DMKD", fusion="fixed"))
    assert len(fixed.fusion_logits) == 0
    torch.testing.assert_close(fixed.fusion_weights(0), torch.tensor([0.5, 0.5]))


def test_dmkd_rejects_bad_config():
    with pytest.raises(ValueError, match="mask_rule"):
        build_distiller(dict(type="DMKD", mask_rule="most"))
    with pytest.raises(ValueError, match="fusion"):
        build_distiller(dict(type="DMKD", fusion="mean"))


# ---------------------------------------------------------------------------------------------- DFMSD


def test_dfmsd_enhancement_masks_more_cells_inside_boxes():
    inside = make_batch().inside_boxes((H, W))
    assert inside[0, :3, :3].all() and inside[0].sum() == 9 and inside[1].sum() == 0
    # Cells inside the box get the lowest attention, so without enhancement few of them are masked.
    positions = torch.where(inside.reshape(N, H * W) > 0, 0.0, 9.0) + torch.arange(H * W).float() / H / W + 1
    teacher = ranked_teacher(positions, torch.arange(1.0, C + 1).repeat(N, 1))
    distiller = make(dict(type="DFMSD", align=None, enhance=0.0, mask_ratio=RATIO))
    plain = distiller.masks(teacher, make_batch())[0].reshape(N, H * W)
    distiller.apply_settings(enhance=3.0)
    enhanced = distiller.masks(teacher, make_batch())[0].reshape(N, H * W)

    assert torch.equal(plain, top_keep(positions, 10))
    scores = spatial_attention(teacher, 0.5) * (1 + 3.0 * inside)
    assert torch.equal(enhanced, top_keep(scores.reshape(N, H * W), 10))
    newly_masked = (plain == 1) & (enhanced == 0)
    assert newly_masked[0].any()
    assert (inside.reshape(N, H * W)[newly_masked] == 1).all()
    assert torch.equal(plain[1], enhanced[1])  # no boxes, no change


def test_dfmsd_without_enhancement_and_alignment_is_dmkd():
    student, teacher = features()
    torch.manual_seed(3)
    dmkd = make(dict(type="DMKD"))
    torch.manual_seed(3)
    dfmsd = make(dict(type="DFMSD", enhance=0.0, align=None))
    assert dfmsd.alpha_dfmsd == dmkd.alpha_dmkd == 2e-5
    with torch.no_grad():
        torch.testing.assert_close(
            dfmsd([student], [teacher], make_batch())["loss_dfmsd_p3"],
            dmkd([student], [teacher], make_batch())["loss_dmkd_p3"],
        )


@pytest.mark.parametrize("align", ["standardize", "affine"])
def test_dfmsd_alignment_makes_loss_invariant_to_teacher_affine(align):
    """With the masks chosen on the aligned teacher too (attention_from='aligned')."""
    student, teacher = features()
    g = torch.Generator().manual_seed(5)
    scale = torch.rand(1, C, 1, 1, generator=g) * 3 + 0.5
    shift = torch.randn(1, C, 1, 1, generator=g) * 4
    distiller = make(dict(type="DFMSD", align=align, alpha_dfmsd=1.0, attention_from="aligned"))
    with torch.no_grad():
        loss = distiller([student], [teacher], make_batch())["loss_dfmsd_p3"]
        moved = distiller([student], [teacher * scale + shift], make_batch())["loss_dfmsd_p3"]
    torch.testing.assert_close(moved, loss, rtol=1e-4, atol=0)

    unaligned = make(dict(type="DFMSD", align=None, alpha_dfmsd=1.0))
    with torch.no_grad():
        raw = unaligned([student], [teacher], make_batch())["loss_dfmsd_p3"]
        raw_moved = unaligned([student], [teacher * scale + shift], make_batch())["loss_dfmsd_p3"]
    assert not torch.allclose(raw, raw_moved, rtol=1e-2)


def test_dfmsd_affine_alignment_trains_and_alignment_term():
    student, teacher = features()
    distiller = make(dict(type="DFMSD", align="affine", align_weight=4.0))
    losses = distiller([student], [teacher], make_batch())
    assert set(losses) == {"loss_dfmsd_rec_p3", "loss_dfmsd_align_p3"}
    expected = 4.0 * ((standardise_channels(student) - standardise_channels(teacher)) ** 2).mean() / 2
    torch.testing.assert_close(losses["loss_dfmsd_align_p3"], expected)
    sum(losses.values()).backward()
    assert distiller.affine_weights[0].grad.abs().sum() > 0
    assert distiller.affine_biases[0].grad.abs().sum() > 0


def test_dfmsd_default_weights_and_apply_settings():
    assert build_distiller(dict(type="DFMSD")).alpha_dfmsd == 1e-6
    assert build_distiller(dict(type="DFMSD", align=None)).alpha_dfmsd == 2e-5
    distiller = make(dict(type="DFMSD"))
    distiller.apply_settings(enhance=2.5, mask_ratio=0.4, alpha_dfmsd=3e-6)
    assert (distiller.enhance, distiller.mask_ratio, distiller.alpha_dfmsd) == (2.5, 0.4, 3e-6)
    spatial, _ = distiller.masks(features()[1], make_batch())
    assert ((1 - spatial).sum(dim=(1, 2, 3)) == round(0.4 * H * W)).all()
    assert set(distiller.settable) == {"loss_weight", "enhance", "mask_ratio", "channel_mask_ratio", "alpha_dfmsd"}
    with pytest.raises(ValueError, match=r"'temp'.*'enhance'.*'alpha_dfmsd'"):
        distiller.apply_settings(temp=1.0)
    with pytest.raises(ValueError, match="mask_ratio"):
        distiller.apply_settings(mask_ratio=1.5)
    with pytest.raises(ValueError, match="enhance"):
        distiller.apply_settings(enhance=-1.0)
    assert distiller.mask_ratio == 0.4
    with pytest.raises(ValueError, match="'enhance'"):
        make(dict(type="DMKD")).apply_settings(enhance=1.0)


def test_dual_mask_visual_maps():
    positions, channels = random_ranks()
    teacher = ranked_teacher(positions, channels)
    distiller = make(dict(type="DFMSD", align=None, mask_ratio=RATIO))
    maps = distiller.visual_maps(torch.randn(N, C, H, W), teacher, make_batch(), 0)
    spatial, _ = distiller.masks(teacher, make_batch())
    assert torch.equal(maps["masked positions"], 1 - spatial[:, 0])
    inside = make_batch().inside_boxes((H, W))
    torch.testing.assert_close(maps["selection score"], spatial_attention(teacher, 0.5) * (1 + inside))


# ---------------------------------------------------------------------------- DMKD / DFMSD ablation options


def test_bottomk_masks_the_least_attended_entries():
    positions, channels = random_ranks()
    distiller = make(dict(type="DMKD", mask_ratio=RATIO, mask_rule="bottomk"))
    spatial, channel = distiller.masks(ranked_teacher(positions, channels), make_batch())
    assert torch.equal(spatial.reshape(N, H * W), top_keep(-positions, 10))
    assert torch.equal(channel.reshape(N, C), top_keep(-channels, 5))


def test_random_rule_ignores_the_scores():
    torch.manual_seed(0)
    scores = torch.linspace(0.1, 3.0, 16).repeat(4000, 1)
    frequency = select_masked(scores, 0.25, "random").float().mean(dim=0)
    torch.testing.assert_close(frequency, torch.full((16,), 0.25), atol=0.03, rtol=0)


def test_separate_channel_mask_ratio():
    positions, channels = random_ranks()
    distiller = make(dict(type="DMKD", mask_ratio=RATIO, channel_mask_ratio=0.25))
    spatial, channel = distiller.masks(ranked_teacher(positions, channels), make_batch())
    assert torch.equal(spatial.reshape(N, H * W), top_keep(positions, 10))
    assert torch.equal(channel.reshape(N, C), top_keep(channels, 2))


def test_enhancement_as_loss_weight_inside_boxes():
    student, teacher = features()
    torch.manual_seed(3)
    weighted = make(dict(type="DFMSD", align=None, alpha_dfmsd=1.0, enhance=3.0, enhance_mode="weight"))
    torch.manual_seed(3)
    plain = make(dict(type="DFMSD", align=None, alpha_dfmsd=1.0, enhance=0.0))
    batch = make_batch()
    assert torch.equal(weighted.masks(teacher, batch)[0], plain.masks(teacher, batch)[0])  # selection unbiased
    with torch.no_grad():
        error = (teacher - plain.reconstruct(student, teacher, batch, 0)).pow(2)
        expected = (error * (1 + 3.0 * batch.inside_boxes((H, W)))[:, None]).sum() / N
        torch.testing.assert_close(weighted([student], [teacher], batch)["loss_dfmsd_p3"], expected)
        assert expected > error.sum() / N


def test_masks_from_the_raw_teacher_attention():
    positions, channels = random_ranks()
    teacher = ranked_teacher(positions, channels) + 3.0 * torch.arange(C).reshape(1, C, 1, 1)  # channel offsets
    student = torch.randn(N, C, H, W)
    raw = make(dict(type="DFMSD", enhance=0.0, mask_ratio=RATIO))
    aligned = make(dict(type="DFMSD", enhance=0.0, attention_from="aligned", mask_ratio=RATIO))
    maps = raw.visual_maps(student, teacher, make_batch(), 0)
    assert torch.equal(maps["masked positions"], 1 - raw.masks(teacher, make_batch())[0][:, 0])
    assert not torch.equal(maps["masked positions"], aligned.visual_maps(student, teacher, make_batch(), 0)[
        "masked positions"])


def test_fusion_weights_are_logged_per_level():
    distiller = build_distiller(dict(type="DMKD", name="dm"))
    distiller.setup([LevelPair(f"p{i}", i - 3, i - 3, C, C, (H, W), (H, W)) for i in (3, 4)])
    with torch.no_grad():
        distiller.fusion_logits[1].copy_(torch.tensor([2.0, 0.0]))
    logged = distiller.log_values()
    assert set(logged) == {"dm_ws_p3", "dm_ws_p4"}
    assert float(logged["dm_ws_p3"]) == 0.5
    torch.testing.assert_close(logged["dm_ws_p4"], torch.sigmoid(torch.tensor(2.0)))
    assert make(dict(type="DMKD", fusion="fixed")).log_values() == {}


# ------------------------------------------------------------------------------------------------ RND


def test_rnd_target_is_frozen_and_outside_parameters():
    student, teacher = features()
    distiller = make(dict(type="RND", embed_channels=16, hidden_channels=16))
    target = distiller.targets[0]
    assert list(target.parameters()) == []
    parameter_ids = {id(p) for p in distiller.parameters()}
    assert all(id(b) not in parameter_ids and not b.requires_grad for b in target.buffers())
    assert "targets.0.weight1" in distiller.state_dict()
    target_before = {k: v.clone() for k, v in target.state_dict().items()}
    predictor_before = [p.detach().clone() for p in distiller.predictors[0].parameters()]
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.1, weight_decay=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        sum(distiller([student], [teacher], make_batch()).values()).backward()
        assert all(b.grad is None for b in target.buffers())
        optimizer.step()
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in target_before.items())
    assert all(not torch.equal(a, b.detach()) for a, b in zip(predictor_before, distiller.predictors[0].parameters()))


def test_rnd_target_seed_is_reproducible():
    first = make(dict(type="RND", target_seed=3)).targets[0].weight1
    again = make(dict(type="RND", target_seed=3)).targets[0].weight1
    other = make(dict(type="RND", target_seed=4)).targets[0].weight1
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_rnd_loss_falls_when_training_the_predictor():
    torch.manual_seed(0)
    student, teacher = features()
    distiller = make(dict(type="RND", embed_channels=16, hidden_channels=32))
    optimizer = torch.optim.Adam(distiller.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = distiller([student], [teacher], make_batch())["loss_rnd_p3"]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_rnd_running_statistics_update_in_training_only_and_round_trip():
    student, teacher = features()
    distiller = make(dict(type="RND", embed_channels=16, hidden_channels=16, momentum=0.1))
    stats = [n for n in distiller.state_dict() if "moments" in n]
    assert stats

    distiller.eval()
    initial = {k: v.clone() for k, v in distiller.state_dict().items()}
    with torch.no_grad():
        distiller([student], [teacher], make_batch())
    assert all(torch.equal(v, distiller.state_dict()[k]) for k, v in initial.items())

    distiller.train()
    with torch.no_grad():
        distiller([student], [teacher], make_batch())
        distiller([student * 2], [teacher * 3 + 1], make_batch())
    state = distiller.state_dict()
    assert state["teacher_moments.0.count"] == 2 and state["error_moments.0.count"] == 2
    expected_mean = 0.9 * teacher.mean(dim=(0, 2, 3)) + 0.1 * (teacher * 3 + 1).mean(dim=(0, 2, 3))
    torch.testing.assert_close(state["teacher_moments.0.mean"], expected_mean)
    assert not torch.equal(state["error_moments.0.var"], initial["error_moments.0.var"])

    restored = make(dict(type="RND", embed_channels=16, hidden_channels=16, momentum=0.1, target_seed=9))
    restored.load_state_dict(state)
    assert all(torch.equal(v, restored.state_dict()[k]) for k, v in state.items())
    distiller.eval()
    restored.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            restored([student], [teacher], make_batch())["loss_rnd_p3"],
            distiller([student], [teacher], make_batch())["loss_rnd_p3"],
            rtol=0,
            atol=0,
        )


def test_rnd_novelty_map_in_batch_maps():
    student, teacher = features()
    distiller = make(dict(type="RND", embed_channels=16, hidden_channels=16))
    batch = make_batch()
    distiller([student.requires_grad_()], [teacher], batch)
    novelty = batch.maps["rnd_novelty"]["p3"]
    assert novelty.shape == (N, H, W) and not novelty.requires_grad
    torch.testing.assert_close(novelty.mean(dim=(1, 2)), torch.ones(N))
    assert (novelty >= 0).all() and novelty.std() > 0

    state = {k: v.clone() for k, v in distiller.state_dict().items()}
    visual = distiller.visual_maps(student, teacher, make_batch(), 0)["novelty"]
    assert visual.shape == (N, H, W) and not visual.requires_grad
    assert all(torch.equal(v, distiller.state_dict()[k]) for k, v in state.items())


def test_rnd_update_proportion_uses_a_fraction_of_locations():
    student, teacher = features()
    torch.manual_seed(0)
    distiller = make(dict(type="RND", update_proportion=0.5))
    distiller([student], [teacher], make_batch())["loss_rnd_p3"].backward()
    assert distiller.predictors[0][0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="update_proportion"):
        build_distiller(dict(type="RND", update_proportion=0.0))


# ------------------------------------------------------------------------------------------------- all


@pytest.mark.parametrize(
    "cfg",
    [
        dict(type="DMKD"),
        dict(type="DMKD", mask_rule="sample", fusion="sigmoid"),
        dict(type="DFMSD"),
        dict(type="DFMSD", align="affine", align_weight=1.0),
        dict(type="RND"),
    ],
)
def test_gradients_reach_the_student(cfg):
    student, teacher = features()
    student.requires_grad_()
    distiller = make(cfg)
    sum(distiller([student], [teacher], make_batch()).values()).backward()
    assert student.grad is not None and torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0


def test_connector_aligns_student_channels():
    """With a 1x1 connector the loss is the loss of the projected student feature."""
    distiller = build_distiller(dict(type="DFMSD", connector="conv1x1"))
    distiller.setup([LevelPair("p3", 0, 0, 4, C, (H, W), (H, W))])
    plain = build_distiller(dict(type="DFMSD"))
    plain.setup([LevelPair("p3", 0, 0, C, C, (H, W), (H, W))])
    plain.load_state_dict({k: v for k, v in distiller.state_dict().items() if not k.startswith("connectors.")})
    proj = distiller.connectors[0].proj
    assert (proj.in_channels, proj.out_channels, proj.kernel_size) == (4, C, (1, 1))
    student, teacher = torch.randn(N, 4, H, W), features()[1]
    with torch.no_grad():
        torch.manual_seed(0)
        ours = distiller([student], [teacher], make_batch())["loss_dfmsd_p3"]
        torch.manual_seed(0)
        expected = plain([proj(student)], [teacher], make_batch())["loss_dfmsd_p3"]
    assert ours > 0
    torch.testing.assert_close(ours, expected)
