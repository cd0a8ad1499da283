"""tools/benchmark.py on the toy config: PKD only, in this process, a couple of iterations."""
from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("kdtools_benchmark", ROOT / "tools/benchmark.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_pkd_on_the_toy_config(benchmark, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the toy config names its teacher config relative to the repository
    args = benchmark.parse_args(["--distillers", "PKD", "--iters", "2", "--warmup", "1", "--random-teacher",
                                 "--threads", str(torch.get_num_threads())])
    spec = benchmark.make_spec(args, str(tmp_path))
    assert spec.image_size == spec.padded_size == (128, 128)
    c_s, c_t = spec.student["neck"]["out_channels"], spec.teacher["config"]["neck"]["out_channels"]
    pkd = spec.distillers["PKD"]
    if c_s != c_t:
        assert pkd["connector"] == "conv1x1"
    connector_params = 5 * (c_s * c_t + c_t) if pkd.get("connector") == "conv1x1" else 0  # a 1x1 conv per P3-P7

    measurements = benchmark.measure(spec, isolate=False)
    window = measurements.windows["PKD"]
    for times in (window.student, window.teacher, window.kd, window.distillers, window.kd_cpu):
        assert len(times) == 2 and min(times) > 0
    assert window.info["distiller_param_bytes"] == 4 * connector_params  # fp32
    assert "generation_gflop" not in window.info and window.generation == []

    (row,) = benchmark.summarise(measurements)
    assert row.name == "PKD" and row.t_kd == statistics.median(window.kd)
    assert row.t_student == statistics.median(window.student)
    assert row.t_teacher == statistics.median(window.teacher)
    assert row.overhead == pytest.approx(row.t_kd / (row.t_student + row.t_teacher))
    cpu = [statistics.median(times) for times in (window.student_cpu, window.teacher_cpu, window.kd_cpu)]
    assert row.cpu_overhead == pytest.approx(cpu[2] / (cpu[0] + cpu[1]))
    assert row.modules_mib == pytest.approx(window.info["distiller_param_bytes"] * 4 / 2**20)
    bound = measurements.student_peak_mib + measurements.teacher_peak_mib + row.modules_mib
    assert row.memory_ratio == pytest.approx(row.peak_mib / bound)
    assert row.overhead_with_generation is None
    assert row.overhead_bar_met == (row.overhead <= 1.10) and row.generation_bar_met is None

    table = benchmark.format_report(benchmark.machine(spec), spec, args.config, measurements, [row])
    assert "| PKD |" in table and "student step" in table


def test_generation_blocks_and_their_flops(benchmark):
    from kdtools.distillers.base import LevelPair
    from kdtools.registry import build_distiller

    n, c, h, w = 2, 8, 4, 6
    level = LevelPair("p3", 0, 0, c, c, (h, w), (h, w))
    dmkd, mgd = build_distiller(dict(type="DMKD")), build_distiller(dict(type="MGD"))
    dmkd.setup([level])
    mgd.setup([level])
    blocks = benchmark.generation_blocks(dmkd)
    assert blocks == [[dmkd.spatial_generators[0], dmkd.channel_generators[0]]]
    assert benchmark.generation_blocks(mgd) == [[mgd.generation[0]]]
    assert benchmark.generation_blocks(build_distiller(dict(type="PKD"))) == []
    # two 3x3 convs C -> C per block, two blocks per level; x3 for forward + backward
    assert benchmark.generation_flops(blocks, [torch.Size((n, c, h, w))]) == 2 * 2 * 2 * 9 * c * c * h * w * n * 3

    generation = benchmark.GenerationBlocks(blocks, [torch.Size((n, c, h, w))], "cpu")
    generation.step()
    assert all(p.grad is None for p in dmkd.parameters())
