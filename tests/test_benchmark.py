"""tools/benchmark.py and its figures (kdtools.benchmarking): PKD on the toy config in this process, the summary's
numbers, the distillers timed by default, the random teacher of a fresh clone, generation blocks, CrossKD's
crossing."""
from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch
from conftest import tool_module

from kdtools import benchmarking

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def benchmark():
    with tool_module("benchmark") as module:
        yield module


def test_pkd_on_the_toy_config(benchmark, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the toy config names its teacher config relative to the repository
    args = benchmark.parse_args(["--distillers", "PKD", "--iters", "2", "--warmup", "1", "--random-teacher",
                                 "--threads", str(torch.get_num_threads())])
    spec = benchmark.make_spec(args, str(tmp_path))
    assert spec.image_size == spec.padded_size == (128, 128)
    assert spec.student["neck"]["out_channels"] == spec.teacher["config"]["neck"]["out_channels"] == 64
    assert spec.distillers == {"PKD": dict(type="PKD", loss_weight=10.0)}  # the config's entry; equal widths

    measurements = benchmark.measure(spec, isolate=False)
    window = measurements.windows["PKD"]
    for times in (window.student, window.teacher, window.kd, window.distillers, window.kd_cpu):
        assert len(times) == 2 and min(times) > 0
    assert window.info["distiller_param_bytes"] == 0  # PKD's resize connector has no parameters
    assert "extra_gflop" not in window.info and window.extra == []

    (row,) = benchmarking.summarise(measurements)
    assert row.name == "PKD" and row.t_kd == statistics.median(window.kd) and row.overhead_with_extra is None
    table = benchmarking.format_report(benchmark.machine(spec), spec, args.config, measurements, [row])
    assert "| PKD |" in table and "student step" in table


def test_crosskd_crossing_is_timed_alone_against_the_head_bar(benchmark, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = benchmark.parse_args(["--config", "configs/toy/crosskd_gfl_toy.py", "--distillers", "CrossKD", "LD",
                                 "--iters", "1", "--warmup", "0", "--random-teacher"])
    spec = benchmark.make_spec(args, str(tmp_path))
    crosskd = benchmark.Phase(spec, "CrossKD")
    step = crosskd.step()
    assert step.extra > 0 and step.distillers > 0
    teacher_params = list(crosskd.model.teacher.model.parameters())
    assert all(p.grad is None and not p.requires_grad for p in teacher_params)  # the crossing reaches no teacher
    assert crosskd.finish()["time_bar"] == benchmarking.HEAD_BAR and crosskd.extra_gflop is None
    ld = benchmark.Phase(spec, "LD")
    assert ld.step().extra is None and ld.finish()["time_bar"] == benchmarking.HEAD_BAR


def test_summary_figures(benchmark):
    window = benchmarking.Window(
        student=[0.010, 0.020, 0.030], teacher=[0.010] * 3, kd=[0.030, 0.036, 0.040], distillers=[0.002] * 3,
        extra=[0.004] * 3, student_cpu=[0.02] * 3, teacher_cpu=[0.02] * 3, kd_cpu=[0.05] * 3,
        info=dict(peak_mib=360.0, distiller_param_bytes=5 * 2**19, extra_gflop=1.5))
    (row,) = benchmarking.summarise(benchmarking.Measurements(200.0, 90.0, {"DMKD": window}))
    assert (row.t_student, row.t_teacher, row.t_kd, row.t_distillers) == (0.020, 0.010, 0.036, 0.002)
    assert row.overhead == pytest.approx(1.2) and row.cpu_overhead == pytest.approx(1.25)
    assert row.modules_mib == pytest.approx(10.0)  # 2.5 MiB of parameters x 4 state copies
    assert row.memory_ratio == pytest.approx(1.2)  # 360 / (200 + 90 + 10)
    assert row.overhead_with_extra == pytest.approx(0.036 / 0.034)
    assert (row.overhead_bar_met, row.extra_bar_met, row.memory_bar_met) == (False, True, False)

    window.info["time_bar"] = benchmarking.HEAD_BAR  # a head distiller: 1.06 misses 1.05
    (row,) = benchmarking.summarise(benchmarking.Measurements(200.0, 90.0, {"CrossKD": window}))
    assert row.overhead_with_extra == pytest.approx(1.0588, abs=1e-4) and row.extra_bar_met is False


def test_distillers_to_time_come_from_the_registry(benchmark):
    from kdtools.registry import DISTILLERS

    retina = dict(bbox_head=dict(type="RetinaHead"))
    gfl = dict(bbox_head=dict(type="GFLHead"))
    dino = dict(type="DINO", bbox_head=dict(type="DINOHead"))
    head_methods, query_methods = {"LD", "CrossKD", "BCKD"}, {"DETRDistill", "KDDETR"}
    assert set(benchmark.fitting_distillers(retina)) == set(DISTILLERS.module_dict) - head_methods - query_methods
    assert set(benchmark.fitting_distillers(gfl)) == set(DISTILLERS.module_dict) - query_methods
    assert set(benchmark.fitting_distillers(dino)) == set(DISTILLERS.module_dict) - head_methods
    assert set(benchmark.fitting_distillers(dict(bbox_head=dict(type="LDHead")))) >= head_methods  # a GFLHead
    configs = benchmark.distiller_configs(["PKD", "LD"], [dict(type="LD", tau=4.0)], conv1x1=True)
    assert configs == {"PKD": dict(type="PKD", connector="conv1x1"), "LD": dict(type="LD", tau=4.0)}


def test_a_missing_teacher_checkpoint_times_a_random_teacher(benchmark, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    config = tmp_path / "fresh_clone.py"  # a teacher that was never trained
    config.write_text(f"_base_ = ['{ROOT}/configs/toy/ld_gfl_toy.py']\n"
                      "teacher = dict(checkpoint='nowhere/teacher.pth')\n")
    args = benchmark.parse_args(["--config", str(config), "--iters", "1", "--warmup", "0"])
    spec = benchmark.make_spec(args, str(tmp_path))
    assert spec.teacher["checkpoint"] == str(tmp_path / "random_teacher.pth")
    assert "not found: timing a randomly initialised teacher" in capsys.readouterr().out
    assert set(spec.distillers) == set(benchmark.fitting_distillers(spec.student)) and "LD" in spec.distillers


def test_extra_blocks_and_their_flops(benchmark):
    from kdtools.distillers.base import LevelPair
    from kdtools.registry import build_distiller

    n, c, h, w = 2, 8, 4, 6
    level = LevelPair("p3", 0, 0, c, c, (h, w), (h, w))
    dmkd, mgd = build_distiller(dict(type="DMKD")), build_distiller(dict(type="MGD"))
    dmkd.setup([level])
    mgd.setup([level])
    blocks = dmkd.training_only_blocks()
    assert blocks == [[dmkd.spatial_generators[0], dmkd.channel_generators[0]]]
    assert mgd.training_only_blocks() == [[mgd.generation[0]]]
    assert build_distiller(dict(type="PKD")).training_only_blocks() == []
    # two 3x3 convs C -> C per block, two blocks per level; x3 for forward + backward
    assert benchmarking.generation_flops(blocks, [torch.Size((n, c, h, w))]) == 2 * 2 * 2 * 9 * c * c * h * w * n * 3

    generation = benchmarking.GenerationBlocks(blocks, [torch.Size((n, c, h, w))], "cpu")
    generation.step()
    assert all(p.grad is None for p in dmkd.parameters())
