"""Codistillation: peers on torch.distributed (gloo), their exchange, burn-in, shards and resume."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from kdtools.checkpoint import load_checkpoint_file
from kdtools.codistill import PeerLayout, codistill_spec, layout_from_env, peer_config
from kdtools.datasets import PeerShardSampler, peer_shard

ROOT = Path(__file__).resolve().parents[1]
GFL_STUDENT = ROOT / "configs/toy/gfl_toy_student.py"
# MGD's generation block and IE-KD's encoders: distiller parameters under DDP; IE-KD in its mutual-learning form
# (the auto-encoder learns the other peer's features online).
DISTILLERS = [dict(type="BCKD"), dict(type="MGD", name="mgd"), dict(type="IEKD", phase="joint")]


def test_disjoint_shards_share_no_image_and_cover_the_data():
    shards = [peer_shard(11, p, 3, seed=5) for p in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    distinct = [set(s) for s in shards]
    assert not (distinct[0] & distinct[1] or distinct[0] & distinct[2] or distinct[1] & distinct[2])
    assert set().union(*distinct) == set(range(11))
    assert shards == [peer_shard(11, p, 3, seed=5) for p in range(3)]  # a fixed partition
    sampler = PeerShardSampler(list(range(11)), peer=1, peers=3, partition_seed=5, seed=0)
    assert sorted(sampler) == sorted(shards[1])


def test_layout_splits_ranks_into_consecutive_peer_blocks():
    layouts = [PeerLayout(rank, 4, 2) for rank in range(4)]
    assert [(lay.peer, lay.local_rank) for lay in layouts] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [layouts[0].leader(p) for p in range(2)] == [0, 2]
    with pytest.raises(ValueError, match="launch a multiple of 2"):
        PeerLayout(0, 3, 2)
    with pytest.raises(ValueError, match="tools/dist_train.sh CONFIG N"):
        layout_from_env(2, "none")


@pytest.mark.parametrize("value, message", [
    (dict(peers=1, distillers=[dict(type="BCKD")]), "at least 2 peers"),
    (dict(peers=2, distillers=[dict(type="BCKD")], exchange_interval=0), "exchange_interval=0"),
    (dict(peers=2, distillers=[dict(type="BCKD")], data="halves"), "'disjoint'"),
    (dict(peers=2, distillers=[dict(type="BCKD")], intervl=5), "Unknown codistill keys \\['intervl'\\]"),
    (dict(peers=3, distillers=[dict(type="BCKD")], models=[{}, {}]), "2 model configs for 3 peers"),
])
def test_codistill_spec_rejects_bad_options(value, message):
    with pytest.raises(ValueError, match=message):
        codistill_spec(value)


def test_peer_config_gives_each_peer_its_model_seed_work_dir_and_shard():
    cfg = Config.fromfile(str(ROOT / "configs/codistill/bckd_gfl_toy.py"))
    cfg.work_dir = "work_dirs/run"
    cfg.randomness = dict(seed=3)
    peer = peer_config(cfg, 1)
    assert peer.model.type == "DistillDetector" and peer.model.student.type == "GFL"
    assert [m["type"] for m in peer.model.peers] == ["GFL"]
    assert peer.work_dir == "work_dirs/run/peer1" and peer.randomness.seed == 7
    assert peer.train_dataloader.sampler == dict(type="PeerShardSampler", peer=1, peers=2, partition_seed=0,
                                                 shuffle=True)
    assert dict(type="PeerExchangeHook", interval=50, burn_in=240) in peer.custom_hooks
    cfg = Config.fromfile(str(ROOT / "configs/codistill/bckd_gfl_toy.py"))
    cfg.teacher = dict(config="x.py", checkpoint="y.pth")
    with pytest.raises(ValueError, match="leave out 'teacher'"):
        peer_config(cfg, 0)


def codistill_config(toy_root: str, path: Path, **codistill: object) -> Path:
    """A toy GFL codistillation config of 6 iterations of 2 images (4 per epoch of an 8-image shard), exchanges
    at iterations 1, 3 and 5 (burn-in 1), a checkpoint after every iteration."""
    cfg = Config.fromfile(str(GFL_STUDENT))
    cfg.codistill = dict(peers=2, exchange_interval=2, burn_in=1, distillers=DISTILLERS, **codistill)
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root = toy_root
        cfg[loader].update(num_workers=0, persistent_workers=False, batch_size=2)
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=6, val_interval=6)
    cfg.param_scheduler = []
    cfg.log_processor = dict(by_epoch=False)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=1, by_epoch=False, max_keep_ckpts=-1)
    cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", find_unused_parameters=False)
    cfg.env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork"), dist_cfg=dict(backend="gloo"))
    cfg.randomness = dict(seed=0, deterministic=False)
    cfg.dump(str(path))
    return path


def launch(config: Path, work_dir: Path, processes: int = 2, *extra: str) -> None:
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(29000 + os.getpid() % 1000), OMP_NUM_THREADS="1")
    result = subprocess.run(
        ["bash", str(ROOT / "tools/dist_train.sh"), str(config), str(processes), "--work-dir", str(work_dir), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def student(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint_file(str(checkpoint))["state_dict"]
    return {k[len("student."):]: v for k, v in state.items() if k.startswith("student.")}


def stale(checkpoint: Path) -> dict[str, torch.Tensor]:
    (copy,) = load_checkpoint_file(str(checkpoint))["codistill"]["peers"]
    return copy


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def scalars(work_dir: Path) -> list[dict]:
    return [json.loads(line) for line in next(work_dir.glob("*/vis_data/scalars.json")).read_text().splitlines()]


@pytest.fixture(scope="module")
def codistilled(toy_root: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two peers, one process each."""
    root = tmp_path_factory.mktemp("codistill")
    launch(codistill_config(toy_root, root / "codistill.py"), root / "run")
    return root


def test_stale_copies_are_the_other_peers_weights_at_the_last_exchange(codistilled):
    run = codistilled / "run"
    for peer, other in ((0, 1), (1, 0)):
        mine, theirs = run / f"peer{peer}", run / f"peer{other}"
        assert same(stale(mine / "iter_6.pth"), student(theirs / "iter_5.pth"))  # exchanged before iteration 5
        assert not same(stale(mine / "iter_6.pth"), student(theirs / "iter_6.pth"))  # stale since
        assert same(stale(mine / "iter_5.pth"), student(theirs / "iter_3.pth"))  # no exchange at iteration 4
        assert not same(stale(mine / "iter_5.pth"), student(theirs / "iter_4.pth"))
    assert not same(student(run / "peer0/iter_6.pth"), student(run / "peer1/iter_6.pth"))  # two models


def test_no_distillation_before_the_burn_in(codistilled):
    for peer in (0, 1):
        logs = scalars(codistilled / "run" / f"peer{peer}")
        steps = {log["iter"]: log for log in logs if "loss" in log}
        assert sorted(steps) == [1, 2, 3, 4, 5, 6]
        # iteration 0: no source is run, no distillation loss
        assert not any(key.startswith(("loss_bckd", "loss_mgd", "loss_iekd", "exchange")) for key in steps[1])
        for step in (2, 3, 4, 5, 6):
            assert steps[step]["loss_bckd_cls"] > 0 and steps[step]["loss_mgd_p3"] > 0
            assert steps[step]["loss_iekd_rec_p3"] > 0 and 0 < steps[step]["loss_iekd_inh_p3"] < 1
            assert -1 < steps[step]["loss_iekd_exp_p3"] < 0
        assert "exchange_time" in steps[2]
        log = next((codistilled / "run" / f"peer{peer}").glob("*/*.log")).read_text()
        assert "Iter(val) [4/4]" in log  # each peer validates on its own (the whole val set, 8 images)


def test_resume_reproduces_the_next_exchange(codistilled):
    """Both peers killed after iteration 2 and resumed: the exchanges at 3 and 5, the weights and the stale
    copies as uninterrupted. (Not at an epoch's end: iteration-based resume with an epoch sampler replays the
    torch generator's draws up to the checkpoint, not the new epoch's, see RNGStateHook.)"""
    resumed = codistilled / "resumed"
    for peer in (0, 1):
        (resumed / f"peer{peer}").mkdir(parents=True)
        shutil.copy(codistilled / "run" / f"peer{peer}" / "iter_2.pth", resumed / f"peer{peer}" / "iter_2.pth")
        (resumed / f"peer{peer}" / "last_checkpoint").write_text(str(resumed / f"peer{peer}" / "iter_2.pth"))
    launch(codistilled / "codistill.py", resumed, 2, "--resume")
    for peer in (0, 1):
        original, again = codistilled / "run" / f"peer{peer}" / "iter_6.pth", resumed / f"peer{peer}" / "iter_6.pth"
        assert same(student(again), student(original))
        assert same(stale(again), stale(original))
        assert load_checkpoint_file(str(again))["codistill"]["last_exchange"] == 5


def test_two_peers_on_four_processes_keep_two_models(toy_root, tmp_path):
    """World 4, 2 peers: each peer a DDP group of 2 ranks on disjoint shards, its gradients averaged inside it."""
    launch(codistill_config(toy_root, tmp_path / "codistill.py"), tmp_path / "run", 4)
    run = tmp_path / "run"
    for peer in (0, 1):
        log = next((run / f"peer{peer}").glob("*/*.log")).read_text()
        assert "Distributed training: True" in log and "GPU number: 2" in log
    assert not same(student(run / "peer0/iter_6.pth"), student(run / "peer1/iter_6.pth"))
    assert same(stale(run / "peer0/iter_6.pth"), student(run / "peer1/iter_5.pth"))


def test_churn_counts_confident_detections_without_a_same_class_match():
    from kdtools.churn import churn, one_way

    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]])
    a = [(boxes, torch.tensor([0, 1, 2]))]
    shifted = boxes + torch.tensor([2.0, 0, 2, 0])  # IoU 8/12 = 0.67 with its original
    b = [(shifted[:2], torch.tensor([0, 2]))]  # the first matches, the second has another class, no third
    assert one_way(a, b) == pytest.approx(2 / 3)
    assert one_way(b, a) == pytest.approx(1 / 2)
    assert churn(a, b) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert churn(a, a) == 0.0
    far = [(boxes + 5.0, torch.tensor([0, 1, 2]))]  # IoU 25/175 < 0.5
    assert churn(a, far) == 1.0


def test_export_student_takes_the_peer(codistilled, tmp_path):
    out = tmp_path / "peer1.pth"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/export_student.py"), str(codistilled / "codistill.py"),
         str(codistilled / "run/peer1/iter_6.pth"), str(out), "--peer", "1"],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert same(load_checkpoint_file(str(out))["state_dict"], student(codistilled / "run/peer1/iter_6.pth"))
    exported = Config.fromfile(str(tmp_path / "peer1.py"))
    assert exported.model.type == "GFL" and "codistill" not in exported
    assert exported.train_dataloader.sampler.type == "DefaultSampler"
    missing = subprocess.run(
        [sys.executable, str(ROOT / "tools/export_student.py"), str(codistilled / "codistill.py"),
         str(codistilled / "run/peer1/iter_6.pth"), str(out)], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode != 0 and "--peer P" in missing.stderr
