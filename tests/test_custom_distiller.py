"""A user's own distiller in a module outside kdtools, next to its config, the tools run from that directory with
nothing on PYTHONPATH: it trains (tools/train.py), it is timed (tools/benchmark.py, whose phases run in spawned
processes) and its exported student loads and predicts in plain mmdet, without kdtools or the module."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import toy_distill_config
from mmdet.registry import MODELS
from mmengine.config import Config

from kdtools.config import expand_distill_config, student_config
from kdtools.registry import DISTILLERS

ROOT = Path(__file__).resolve().parents[1]

DISTILLER_MODULE = '''
import torch.nn.functional as F

from kdtools.distillers import BaseDistiller
from kdtools.registry import DISTILLERS


@DISTILLERS.register_module()
class MyL1(BaseDistiller):
    """Mean absolute error between student and teacher features, per level."""

    def level_loss(self, student, teacher, batch, index):
        return F.l1_loss(student, teacher)
'''

BACKBONE_MODULE = '''
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS


@MODELS.register_module()
class MyResNet(ResNet):
    """A user's student backbone."""
'''

# Plain mmdet: neither kdtools nor the user's module can be imported (run from another directory, too).
PLAIN_MMDET = '''
import sys

sys.modules["kdtools"] = sys.modules["my_distiller"] = None
from mmdet.apis import inference_detector, init_detector

model = init_detector(sys.argv[1], sys.argv[2], device="cpu")
boxes = inference_detector(model, sys.argv[3]).pred_instances.bboxes
print("boxes", tuple(boxes.shape))
'''


def run(args: list[str], cwd: Path) -> str:
    """Run ``args`` with this interpreter in ``cwd``, without PYTHONPATH; its output, which must end well."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=dict(env, OMP_NUM_THREADS="1"),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def tool(name: str) -> str:
    return str(ROOT / "tools" / name)


def user_config(toy_root: str, teacher_ckpt: str, imports: list[str]) -> Config:
    """Two iterations of the toy RetinaNet pair with MyL1, importing ``imports``, no validation."""
    cfg = toy_distill_config(toy_root, teacher_ckpt, [dict(type="MyL1")], work_dir="work")
    cfg.custom_imports = dict(imports=imports, allow_failed_imports=False)
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=2)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=True)
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=2, by_epoch=False)
    cfg.log_processor = dict(by_epoch=False)
    return cfg


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, toy_root: str, teacher_ckpt: str) -> Path:
    """A project directory with my_distiller.py and my_l1.py, trained there through tools/train.py."""
    project = tmp_path_factory.mktemp("project")
    (project / "my_distiller.py").write_text(DISTILLER_MODULE)
    user_config(toy_root, teacher_ckpt, ["my_distiller"]).dump(str(project / "my_l1.py"))
    run([tool("train.py"), "my_l1.py"], cwd=project)
    return project


def test_it_trains_from_the_project_directory(project):
    log = next((project / "work").glob("*/*.log")).read_text()
    assert "loss_myl1_p3" in log and "loss_myl1_p7" in log
    assert (project / "work" / "iter_2.pth").is_file()


def test_it_is_benchmarked_in_spawned_processes(project):
    run([tool("benchmark.py"), "--config", "my_l1.py", "--distillers", "MyL1", "--iters", "1", "--warmup", "0",
         "--threads", "1", "--json", "bench.json"], cwd=project)
    report = json.loads((project / "bench.json").read_text())
    (row,) = report["distillers"]
    assert row["name"] == "MyL1" and row["t_kd"] > 0 and row["t_distillers"] > 0


def test_its_exported_student_predicts_in_plain_mmdet(project, toy_root, tmp_path):
    run([tool("export_student.py"), "my_l1.py", "work/iter_2.pth", "student.pth"], cwd=project)
    exported = Config.fromfile(str(project / "student.py"), import_custom_modules=False)
    assert "custom_imports" not in exported and "distill" not in exported and "teacher" not in exported
    image = sorted((Path(toy_root) / "val").iterdir())[0]
    out = run(["-c", PLAIN_MMDET, str(project / "student.py"), str(project / "student.pth"), str(image)],
              cwd=tmp_path)
    assert "boxes (" in out and ", 4)" in out


@pytest.fixture
def user_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """my_distiller (a distiller) and my_backbone (a student backbone) importable here; unregistered after."""
    (tmp_path / "my_distiller.py").write_text(DISTILLER_MODULE)
    (tmp_path / "my_backbone.py").write_text(BACKBONE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("my_distiller", "my_backbone"):
        sys.modules.pop(name, None)
    DISTILLERS.module_dict.pop("MyL1", None)
    MODELS.module_dict.pop("MyResNet", None)


def test_the_student_keeps_only_the_imports_it_needs(user_modules, toy_root, teacher_ckpt):
    imports = ["kdtools", "my_distiller", "my_backbone"]
    cfg = user_config(toy_root, teacher_ckpt, imports)
    cfg.model.backbone.type = "MyResNet"
    student = student_config(expand_distill_config(cfg))
    assert student.custom_imports == dict(imports=["my_backbone"], allow_failed_imports=False)
    assert "custom_imports" not in student_config(expand_distill_config(user_config(toy_root, teacher_ckpt, imports)))
