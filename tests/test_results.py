"""tools/results.py: the study table (mean, spread, gain over each run's own baseline) and the run record."""
from __future__ import annotations

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
    expected = ["cwd", "dfmsd", "dmkd", "fgd", "mgd", "pkd", "rnd"]
    assert results.TOY.registered_methods() == results.REAL.registered_methods() == expected
    assert results.HEADS.registered_methods() == ["bckd", "crosskd", "ld", "pkd"]
    assert {"dmkd_bottomk", "dfmsd_aligned_attention", "dfmsd_one_stage"} <= set(results.ablation_names())
    for config in results.ABLATIONS.method_configs(results.ablation_names()).values():
        assert (ROOT / config).is_file()
