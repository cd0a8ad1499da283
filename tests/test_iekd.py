"""IE-KD: the channel split, the losses against a direct computation, the auto-encoder's phases and gradients."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor

from kdtools.config import expand_distill_config
from kdtools.distillers import IEKD, DistillBatch, LevelPair

BATCH = DistillBatch([torch.zeros(0, 4)] * 2, [(32, 32)] * 2, (32, 32))


def iekd(student_channels: int = 8, teacher_channels: int = 12, size: tuple[int, int] = (6, 5), **kwargs) -> IEKD:
    torch.manual_seed(0)
    distiller = IEKD(**kwargs)
    distiller.setup([LevelPair("p3", 0, 0, student_channels, teacher_channels, size, size)])
    return distiller


def features(n: int = 2, channels: int = 8, size: tuple[int, int] = (6, 5), seed: int = 1) -> Tensor:
    return torch.randn(n, channels, *size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("split", ["natural", "random"])
@pytest.mark.parametrize("channels", [8, 7])
def test_split_covers_every_student_channel_once(split, channels):
    distiller = iekd(student_channels=channels, split=split)
    inherit, explore = distiller.inherit_index_0, distiller.explore_index_0
    assert len(inherit) == channels // 2 and len(explore) == channels - channels // 2
    assert torch.equal(torch.cat([inherit, explore]).sort().values, torch.arange(channels))
    if split == "natural":
        assert torch.equal(inherit, torch.arange(channels // 2))
    else:
        assert not torch.equal(inherit.sort().values, torch.arange(channels // 2))  # seed 0 mixes the halves
        assert torch.equal(iekd(student_channels=channels, split=split).inherit_index_0, inherit)  # fixed
    student = features(channels=channels)
    a, b = distiller.parts(student, 0)
    assert torch.equal(a, student[:, inherit]) and torch.equal(b, student[:, explore])
    assert "inherit_index_0" in distiller.state_dict()


def direct_factor_transfer(x: Tensor, y: Tensor) -> Tensor:
    x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    x = x / x.pow(2).sum(dim=1, keepdim=True).sqrt()
    y = y / y.pow(2).sum(dim=1, keepdim=True).sqrt()
    return (x - y).abs().sum() / x.numel()


@pytest.mark.parametrize("exploration", ["l1", "cosine"])
def test_losses_match_a_direct_computation(exploration):
    distiller = iekd(exploration=exploration, inherit_weight=0.5, explore_weight=2.0).eval()
    student, teacher = features(), features(channels=12, seed=2)
    losses = distiller([student], [teacher], BATCH)
    assert set(losses) == {"loss_iekd_inh_p3", "loss_iekd_exp_p3"}  # eval: the auto-encoder does not learn
    factor = distiller.autoencoders[0].encoder(teacher)
    inherit = distiller.inherit_encoders[0](student[:, :4])
    explore = distiller.explore_encoders[0](student[:, 4:])
    assert factor.shape == (2, 6, 6, 5) and inherit.shape == explore.shape == factor.shape  # k = 12 // 2
    torch.testing.assert_close(losses["loss_iekd_inh_p3"], 0.5 * direct_factor_transfer(inherit, factor))
    if exploration == "l1":
        expected = -direct_factor_transfer(explore, factor)
    else:
        a, b = explore.reshape(2, -1), factor.reshape(2, -1)
        expected = ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).abs().mean()
    torch.testing.assert_close(losses["loss_iekd_exp_p3"], 2.0 * expected)


def test_identical_factors_give_zero_inheritance_and_the_loss_weight_spares_the_reconstruction():
    distiller = iekd(student_channels=12, teacher_channels=12, loss_weight=3.0)
    unit = iekd(student_channels=12, teacher_channels=12)
    student, teacher = features(channels=12), features(channels=12, seed=2)
    weighted, plain = distiller([student], [teacher], BATCH), unit([student], [teacher], BATCH)
    torch.testing.assert_close(weighted["loss_iekd_rec_p3"], plain["loss_iekd_rec_p3"])  # unweighted
    torch.testing.assert_close(weighted["loss_iekd_inh_p3"], 3 * plain["loss_iekd_inh_p3"])
    factor = torch.rand(2, 6, 6, 5) + 0.1
    assert direct_factor_transfer(factor, 3 * factor) < 1e-7  # scale-free: the factors are L2-normalised
    from kdtools.distillers.iekd import factor_transfer
    assert factor_transfer(factor, 3 * factor) < 1e-7 and factor_transfer(factor, -factor) > 0


def test_autoencoder_phase_lowers_the_reconstruction_error_and_trains_nothing_else():
    distiller = iekd(phase="autoencoder").train()
    student, teacher = features(n=4), features(n=4, channels=12, seed=2)
    optimizer = torch.optim.Adam(distiller.parameters(), lr=1e-2)
    student_encoders = [p.clone() for p in distiller.inherit_encoders.parameters()]
    errors = []
    for _ in range(60):
        losses = distiller([student], [teacher], BATCH)
        assert set(losses) == {"loss_iekd_rec_p3"}
        optimizer.zero_grad()
        losses["loss_iekd_rec_p3"].backward()
        assert all(p.grad is None for p in distiller.inherit_encoders.parameters())
        optimizer.step()
        errors.append(losses["loss_iekd_rec_p3"].item())
    assert errors[-1] < 0.6 * errors[0]
    assert all(torch.equal(a, b) for a, b in zip(student_encoders, distiller.inherit_encoders.parameters()))


def test_distill_phase_freezes_the_autoencoder_and_its_statistics():
    distiller = iekd()
    distiller.apply_settings(phase="distill")
    distiller.train()
    assert not distiller.autoencoders.training and distiller.inherit_encoders.training
    stats = {k: v.clone() for k, v in distiller.autoencoders.state_dict().items()}
    student = features().requires_grad_()
    losses = distiller([student], [features(channels=12, seed=2)], BATCH)
    assert "loss_iekd_rec_p3" not in losses
    sum(losses.values()).backward()
    assert all(p.grad is None for p in distiller.autoencoders.parameters())
    assert all(p.grad is not None for p in distiller.explore_encoders.parameters())
    assert student.grad.abs().sum() > 0
    assert all(torch.equal(stats[k], v) for k, v in distiller.autoencoders.state_dict().items())


def test_bad_choices_name_the_alternatives():
    with pytest.raises(ValueError, match=r"split='halves' is not one of \['natural', 'random'\]"):
        IEKD(split="halves")
    with pytest.raises(ValueError, match="phase='frozen'"):
        iekd().apply_settings(phase="frozen")


def test_no_teacher_parameter_gets_a_gradient_and_the_student_does(make_config):
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate

    cfg = make_config([dict(type="IEKD"), dict(type="PKD")])
    model = MODELS.build(expand_distill_config(cfg).model)
    model.init_weights()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    losses = model.train().loss(data["inputs"], data["data_samples"])
    assert {"loss_iekd_inh_p3", "loss_iekd_exp_p7", "loss_iekd_rec_p5", "loss_pkd_p3"} <= set(losses)
    sum(v for k, v in losses.items() if k.startswith("loss_iekd")).backward()
    assert all(p.grad is None for p in model.teacher.model.parameters())
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert model.student.bbox_head.retina_cls.weight.grad is None  # IE-KD reads the neck only
