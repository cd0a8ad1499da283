"""tools/results.py: the study table (mean, spread, gain over each run's own baseline) and the run record."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from conftest import tool_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results():
    with tool_module("results") as module:
        yield module


def run(mAP: float, seed: int, APl: float = -100.0) -> dict[str, float]:
    return {"mAP": mAP, "AP50": 2 * mAP, "APs": mAP, "APm": mAP, "APl": APl, "train_s": 10.0 * seed, "seed": seed}


def test_table_mean_spread_and_gain_over_own_baseline(results):
    runs = {
        "student": [run(18.0, 0), run(20.0, 1)],
        "slim": [run(10.0, 0), run(12.0, 1)],
        "cwd": [run(25.0, 0), run(27.0, 1)],
        "hetero_slim": [run(13.5, 0), run(14.5, 1, APl=30.0)],
        "teacher": [{**run(36.0, 0), "train_s": 0.0}],
    }
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")
            for line in results.summarise(runs, {"cwd": "student", "hetero_slim": "slim"}).splitlines()[2:]}
    assert rows["cwd"][1:4] == ["2", "26.0 ± 1.4", "52.0 ± 2.8"]
    assert rows["cwd"][7] == "+7.0"  # 26 - 19
    assert rows["hetero_slim"][7] == "+3.0"  # 14 - 11, against its own baseline
    assert rows["student"][7] == ""  # a baseline has no gain
    assert rows["cwd"][6] == "n/a"  # COCO's -1: no large objects in the val set
    assert rows["hetero_slim"][6] == "n/a"  # one seed without large objects is not averaged in
    assert rows["cwd"][8] == "5 s |"
    assert rows["teacher"][8] == "- |"  # evaluated, not trained


def test_study_skips_recorded_runs_and_keeps_the_record(results, tmp_path, monkeypatch):
    study = results.Study(str(tmp_path))
    study.add("student", run(18.0, 0))
    trained = []
    monkeypatch.setattr(results, "train_and_evaluate", lambda *args: trained.append(args) or run(19.0, 1))
    study.run("student", "configs/toy/retinanet_toy_student.py", 0)  # recorded: not trained again
    study.run("student", "configs/toy/retinanet_toy_student.py", 1)
    assert [args[3] for args in trained] == [1]
    assert json.loads((tmp_path / "results.json").read_text()) == results.Study(str(tmp_path)).runs
    assert [r["seed"] for r in results.Study(str(tmp_path)).runs["student"]] == [0, 1]


def test_teacher_is_evaluated_when_trained_else_trained_once(results, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(results, "evaluate", lambda *args: calls.append(("evaluate", *args)) or run(36.0, 0))
    monkeypatch.setattr(results, "train_and_evaluate", lambda *args: calls.append(("train", *args)) or run(30.0, 0))
    study = results.Study(str(tmp_path))
    study.teacher("a", "a.py", "work_dirs/a", trained="work_dirs/a")
    study.teacher("b", "b.py", "work_dirs/b", trained=None)
    study.teacher("a", "a.py", "work_dirs/a", trained="work_dirs/a")  # recorded: neither again
    assert calls == [("evaluate", "a.py", "work_dirs/a", str(tmp_path / "a_eval")), ("train", "b.py", "work_dirs/b")]
    assert [study.runs[name][0]["mAP"] for name in ("a", "b")] == [36.0, 30.0]


def test_studies_find_every_registered_method_with_a_config(results):
    expected = ["cwd", "dfmsd", "dmkd", "fgd", "iekd", "mgd", "pkd", "rnd"]
    assert results.TOY.registered_methods() == results.REAL.registered_methods() == expected
    assert results.HEADS.registered_methods() == ["bckd", "crosskd", "ld", "pkd"]
    assert results.DETR.registered_methods() == ["detrdistill", "kddetr", "pkd"]
    assert "iekd_pkd" in results.REAL.config_names()  # combinations can be asked for by name
    assert {"dmkd_bottomk", "dfmsd_aligned_attention", "dfmsd_one_stage"} <= set(results.ablation_names())
    for config in results.ABLATIONS.method_configs(results.ablation_names()).values():
        assert (ROOT / config).is_file()


def test_efficientface_study_runs_seeds_and_ablations_and_tables_gains_and_sizes(results, tmp_path, monkeypatch):
    ablations = results.efficientface_ablations()
    assert ablations == {f"efficientface_{name}": f"configs/bccd/efficientface_ablations/{name}.py"
                         for name in ("fpn", "no_attention", "rfe")}
    assert not any("efficientface" in name for name in results.ablation_names())  # the RetinaNet student's study
    study = results.Study(str(tmp_path))
    for seed, mAP in enumerate((46.0, 47.0, 45.0)):  # recorded runs: not trained again
        study.add("retinanet_student", run(mAP, seed))
    base = {"efficientface": 40.0, "dfmsd_efficientface": 41.0, "efficientface_fpn": 39.0,
            "efficientface_no_attention": 40.5, "efficientface_rfe": 38.0}
    trained = []

    def train(config, work_dir, teacher, seed):
        name = Path(work_dir).name.rsplit("_seed", 1)[0]
        trained.append((name, seed, teacher))
        return run(base[name] + (seed if name == "efficientface" else -seed), seed)

    monkeypatch.setattr(results, "train_and_evaluate", train)
    monkeypatch.setattr(results, "evaluate", lambda *args: {**run(52.0, 0), "train_s": 0.0})
    monkeypatch.setattr(results, "detector_complexity", lambda config, shape: (1_100_000, 3.4e8)
                        if "retinanet" in config else (1_000_000, 2.8e8))
    teacher = str(tmp_path / "teacher.pth")
    Path(teacher).touch()
    results.efficientface_study(argparse.Namespace(work_dir=str(tmp_path), teacher=teacher, seeds=[0, 1, 2]))
    per_seed = [[("efficientface", seed, None), ("dfmsd_efficientface", seed, teacher)] for seed in (0, 1, 2)]
    assert trained == [*per_seed[0], *[(name, 0, None) for name in ablations], *per_seed[1], *per_seed[2]]
    table = (tmp_path / "results.md").read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in table.split("\n\n")[0].splitlines()[2:]}
    assert list(rows) == ["teacher", "retinanet_student", "efficientface", "dfmsd_efficientface",
                          "efficientface_fpn", "efficientface_no_attention", "efficientface_rfe"]
    assert rows["efficientface"][7] == "-5.0"  # 41 - 46
    assert rows["dfmsd_efficientface"][7] == "-1.0"  # 40 - 41
    assert rows["efficientface_rfe"][7] == "-3.0"  # against efficientface's mean over seeds
    assert "| dfmsd_efficientface | efficientface | seed 0: +1.0, seed 1: -1.0, seed 2: -3.0 | 1 of 3 seeds |" in table
    assert "| efficientface_fpn | efficientface | seed 0: -1.0 | 0 of 1 seeds |" in table
    assert "| retinanet_student | 1.10 | 0.34 |" in table and "| efficientface_rfe | 1.00 | 0.28 |" in table
    assert "dfmsd_efficientface | 1.00" not in table  # the same model as efficientface
