"""tools/gpu_check.sh without a GPU: it parses, its wheel list is the one docs/install.md gives (files and
download pins) and is for CPython 3.12 on manylinux x86_64, and the shared mmcv patch (tools/mmcv_build.sh)
does what the build needs."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools/gpu_check.sh"
HELPER = ROOT / "tools/mmcv_build.sh"
INSTALL = ROOT / "docs/install.md"


def script_wheels() -> list[str]:
    block = re.search(r"^WHEEL_FILES=\(\n(.*?)^\)", SCRIPT.read_text(), re.M | re.S)
    assert block, "WHEEL_FILES=( ... ) not found in tools/gpu_check.sh"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def gpu_check_section() -> str:
    text = INSTALL.read_text()
    start = text.index("## GPU check")
    return text[start:text.index("\n## ", start + 1)]


@pytest.mark.parametrize("script", [SCRIPT, HELPER], ids=["gpu_check", "mmcv_build"])
def test_scripts_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_the_wheel_list_is_the_documented_one():
    wheels = script_wheels()
    section = gpu_check_section()
    assert sorted(re.findall(r"^\| `([^`]+\.whl)` \|", section, re.M)) == sorted(wheels)
    assert "| `mmcv-2.1.0.tar.gz` |" in section
    pins = set(re.findall(r"\b([A-Za-z0-9_.-]+==[0-9][A-Za-z0-9_.]*)", section)) - {"mmcv==2.1.0"}
    assert pins == {"==".join(name.split("-")[:2]) for name in wheels}
    names = [name.split("-")[0].lower() for name in wheels]
    assert len(names) == len(set(names)), "one version of each package"


def test_the_wheels_are_for_cpython_312_on_manylinux_x86_64():
    for name in script_wheels():
        python, abi, platform = name[: -len(".whl")].split("-")[-3:]
        assert set(python.split(".")) & {"py3", "cp312"}, name
        assert abi in {"none", "abi3", "cp312"}, name
        assert platform == "any" or all(p.startswith("manylinux") and p.endswith("x86_64")
                                        for p in platform.split(".")), name


def test_the_wheel_folder_is_ignored_by_git():
    result = subprocess.run(["git", "check-ignore", "-q", ".whl/mmcv-2.1.0.tar.gz"], cwd=ROOT)
    assert result.returncode == 0


def patch(tmp_path: Path, setup_py: str) -> tuple[int, str]:
    (tmp_path / "setup.py").write_text(setup_py)
    result = subprocess.run(["bash", "-c", f'source "{HELPER}" && patch_mmcv_source "{tmp_path}"'],
                            capture_output=True, text=True)
    return result.returncode, (tmp_path / "setup.py").read_text()


def test_the_mmcv_patch_asks_for_cpp20_everywhere(tmp_path):
    rc, text = patch(tmp_path, "nvcc = ['-std=c++14']\ncxx = ['-std=c++17']\nnvcc += ['-std=c++17']\n")
    assert rc == 0 and text.count("-std=c++20") == 3 and "c++14" not in text and "c++17" not in text


def test_the_mmcv_patch_fails_on_a_setup_py_without_the_flags(tmp_path):
    rc, _ = patch(tmp_path, "cxx = []\n")
    assert rc != 0


def test_the_mmcv_build_runs_pip_wheel_with_the_ops_in_the_source_tree(tmp_path):
    fake = tmp_path / "python"  # records how it was called instead of building
    fake.write_text('#!/bin/sh\necho "$PWD|$MMCV_WITH_OPS|$MAX_JOBS|$*" > "$RECORD"\n')
    fake.chmod(0o755)
    src = tmp_path / "mmcv-2.1.0"
    src.mkdir()
    record = tmp_path / "record"
    script = f'source "{HELPER}" && build_mmcv_wheel "{fake}" "{src}" "{tmp_path}/dist" -q'
    subprocess.run(["bash", "-c", script], check=True, env={"PATH": "/usr/bin:/bin", "RECORD": str(record),
                                                              "MAX_JOBS": "3"})
    cwd, ops, jobs, args = record.read_text().strip().split("|")
    assert (cwd, ops, jobs) == (str(src), "1", "3")
    assert args.split() == ["-m", "pip", "--disable-pip-version-check", "wheel", "--no-build-isolation", "--no-deps",
                            "-q", ".", "-w", f"{tmp_path}/dist"]
