"""Tests for the synthetic toy COCO data set and the toy detector configs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kdtools.datasets import CLASSES, ensure_toy_coco, make_toy_coco, toy_coco

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "toy"
PARAMS = dict(num_train=40, num_val=10, img_size=128, seed=3)


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy") / "toy_coco"
    make_toy_coco(root, **PARAMS, workers=2)
    return root


@pytest.fixture(scope="module")
def train_json(toy_root: Path) -> dict:
    return json.loads((toy_root / "annotations" / "instances_train.json").read_text())


def test_same_seed_gives_identical_bytes_whatever_the_workers(toy_root: Path, tmp_path: Path) -> None:
    make_toy_coco(tmp_path / "again", **PARAMS, workers=1)
    make_toy_coco(tmp_path / "other_seed", **dict(PARAMS, seed=PARAMS["seed"] + 1), workers=1)
    assert tree_digest(tmp_path / "again") == tree_digest(toy_root)
    assert tree_digest(tmp_path / "other_seed") != tree_digest(toy_root)


def test_existing_data_is_reused_only_for_same_params(tmp_path: Path) -> None:
    params = dict(num_train=4, num_val=2, img_size=64, seed=0, workers=1)
    first = make_toy_coco(tmp_path, **params)
    image = tmp_path / "train" / "000000.png"
    stamp = image.stat().st_mtime_ns
    second = make_toy_coco(tmp_path, **params)
    assert (first["generated"], second["generated"]) == (True, False)
    assert image.stat().st_mtime_ns == stamp
    third = make_toy_coco(tmp_path, **dict(params, num_train=3))
    assert third["generated"] and third["num_images"]["train"] == 3
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["000000.png", "000001.png", "000002.png"]


def test_ensure_toy_coco_generates_only_when_missing(toy_root: Path, tmp_path: Path, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(toy_coco, "make_toy_coco", lambda root: calls.append(Path(root)))
    ensure_toy_coco(toy_root)
    assert calls == []
    ensure_toy_coco(tmp_path / "missing")
    assert calls == [tmp_path / "missing"]


def test_coco_annotations_are_valid(toy_root: Path) -> None:
    from pycocotools.coco import COCO

    size = PARAMS["img_size"]
    for split, num_images in (("train", PARAMS["num_train"]), ("val", PARAMS["num_val"])):
        coco = COCO(str(toy_root / "annotations" / f"instances_{split}.json"))
        assert len(coco.getImgIds()) == num_images
        assert [coco.cats[i]["name"] for i in sorted(coco.cats)] == list(CLASSES)
        assert sorted(coco.cats) == list(range(1, len(CLASSES) + 1))
        for img in coco.loadImgs(coco.getImgIds()):
            assert (img["width"], img["height"]) == (size, size)
            with Image.open(toy_root / split / img["file_name"]) as pil:
                assert pil.size == (size, size) and pil.mode == "RGB"
            assert coco.getAnnIds(imgIds=img["id"]), "every image shows at least one object"
        anns = coco.loadAnns(coco.getAnnIds())
        assert len({a["id"] for a in anns}) == len(anns)
        for ann in anns:
            x, y, w, h = ann["bbox"]
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= size and y + h <= size
            assert ann["area"] == w * h and ann["iscrowd"] == 0
        assert {a["category_id"] for a in anns} <= set(coco.cats)
    meta = json.loads((toy_root / "meta.json").read_text())
    assert meta["params"] == PARAMS
    assert meta["num_images"] == {"train": PARAMS["num_train"], "val": PARAMS["num_val"]}


def test_all_classes_and_scales_present(train_json: dict) -> None:
    anns = train_json["annotations"]
    assert {a["category_id"] for a in anns} == set(range(1, len(CLASSES) + 1))
    extents = np.array([max(a["bbox"][2:]) for a in anns])
    assert (extents <= 12).sum() >= 5, "small objects"
    assert (extents >= PARAMS["img_size"] / 4).sum() >= 5, "large objects"
    assert extents.max() <= PARAMS["img_size"] * 0.6


def test_objects_overlap_sometimes(train_json: dict) -> None:
    by_image: dict[int, list[list[float]]] = {}
    for ann in train_json["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann["bbox"])

    def overlaps(a: list[float], b: list[float]) -> bool:
        return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]

    overlapping = sum(
        overlaps(a, b) for boxes in by_image.values() for i, a in enumerate(boxes) for b in boxes[i + 1 :]
    )
    assert overlapping >= 3


def test_background_is_textured(toy_root: Path) -> None:
    with Image.open(toy_root / "val" / "000000.png") as pil:
        pixels = np.asarray(pil, dtype=np.float64)
    assert pixels.std(axis=(0, 1)).min() > 3


def load_cfg(name: str, root: Path):
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIG_DIR / name))
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = str(root)
    return cfg


def test_configs_share_one_data_root() -> None:
    from mmengine.config import Config

    for name in ("retinanet_toy_student.py", "retinanet_toy_teacher.py"):
        cfg = Config.fromfile(str(CONFIG_DIR / name))
        loaders = (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader)
        roots = {loader.dataset.data_root for loader in loaders} | {cfg.toy_data.data_root}
        assert roots == {"data/toy_coco/"}
        assert cfg.val_evaluator.type == "CocoMetric" and cfg.val_evaluator.ann_file is None


@pytest.mark.parametrize("name", ["retinanet_toy_student.py", "retinanet_toy_teacher.py"])
def test_config_builds_dataset(name: str, toy_root: Path) -> None:
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = load_cfg(name, toy_root)
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == CLASSES
    assert cfg.model.bbox_head.num_classes == len(CLASSES)
    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    val_set = DATASETS.build(cfg.val_dataloader.dataset)
    assert (len(train_set), len(val_set)) == (PARAMS["num_train"], PARAMS["num_val"])
    item = train_set[0]
    assert set(item) == {"inputs", "data_samples"}
    assert tuple(item["inputs"].shape) == (3, PARAMS["img_size"], PARAMS["img_size"])
    gt = item["data_samples"].gt_instances
    assert gt.bboxes.shape[0] == gt.labels.shape[0] > 0
    assert int(gt.labels.max()) < len(CLASSES)
    assert val_set[0]["data_samples"].img_id == 1


def test_teacher_is_larger_and_student_trains_a_step(toy_root: Path) -> None:
    import torch
    from mmdet.registry import DATASETS, MODELS
    from mmdet.utils import register_all_modules
    from mmengine.dataset import pseudo_collate

    register_all_modules()
    student_cfg = load_cfg("retinanet_toy_student.py", toy_root)
    student = MODELS.build(student_cfg.model)
    teacher = MODELS.build(load_cfg("retinanet_toy_teacher.py", toy_root).model)

    def count(model: torch.nn.Module) -> int:
        return sum(p.numel() for p in model.parameters())

    assert count(teacher) > 2 * count(student)
    dataset = DATASETS.build(student_cfg.train_dataloader.dataset)
    batch = student.data_preprocessor(pseudo_collate([dataset[i] for i in range(2)]), training=True)
    total, _ = student.parse_losses(student.loss(batch["inputs"], batch["data_samples"]))
    assert torch.isfinite(total) and total > 0
    total.backward()
    assert student.backbone.conv1.weight.grad is not None
