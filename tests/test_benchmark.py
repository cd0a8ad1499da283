"""tools/benchmark.py on the toy config: PKD only, in this process, a couple of iterations."""
from __future__ import annotations

import importlib.util
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
    assert spec.distillers["PKD"]["connector"] == "conv1x1"  # toy student 64-ch FPN, teacher 128-ch

    results = benchmark.run_phases(spec, ["student", "teacher", "PKD"], isolate=False)
    student, teacher, kd = results["student"], results["teacher"], results["PKD"]
    assert min(student.seconds, teacher.seconds, kd.seconds, kd.distiller_seconds) > 0
    assert kd.distiller_param_bytes == 4 * 5 * (64 * 128 + 128)  # a 1x1 conv connector per level P3-P7, fp32
    assert kd.generation_seconds is None and kd.generation_gflop is None

    (row,) = benchmark.summarise(results)
    assert row.name == "PKD" and row.t_kd == kd.seconds
    assert row.overhead == pytest.approx(kd.seconds / (student.seconds + teacher.seconds))
    assert row.modules_mib == pytest.approx(kd.distiller_param_bytes * 4 / 2**20)
    expected_memory = kd.peak_mib / (student.peak_mib + teacher.peak_mib + row.modules_mib)
    assert row.memory_ratio == pytest.approx(expected_memory)
    assert row.overhead_with_generation is None
    assert row.time_bar_met == (row.overhead <= 1.10)

    table = benchmark.format_report(benchmark.machine(spec), spec, args.config, results, [row])
    assert "| PKD |" in table and "student step" in table


def test_generation_blocks_flops_follow_the_formula(benchmark):
    from kdtools.distillers.base import LevelPair
    from kdtools.registry import build_distiller

    dmkd = build_distiller(dict(type="DMKD"))
    dmkd.setup([LevelPair("p3", 0, 0, 8, 8, (4, 6), (4, 6))])
    blocks = benchmark.generation_blocks(dmkd)
    assert len(blocks) == 1 and len(blocks[0]) == 2
    n, c, h, w = 2, 8, 4, 6
    # two 3x3 convs C -> C per block, two blocks per level; x3 for forward + backward
    assert benchmark.generation_flops(blocks, [torch.Size((n, c, h, w))]) == 2 * 2 * 2 * 9 * c * c * h * w * n * 3
    assert benchmark.generation_blocks(build_distiller(dict(type="PKD"))) == []
