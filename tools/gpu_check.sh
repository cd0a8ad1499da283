#!/usr/bin/env bash
# The GPU check of kdtools, in one command, on a machine with one CUDA GPU, nvcc, and a python3 (CPython 3.12)
# with torch (a CUDA build), torchvision and timm, but no network and none of mmcv, mmengine, mmdet and
# pycocotools. What that machine lacks travels with the working tree, in a git-ignored folder (default .whl/):
# the wheels listed in WHEEL_FILES below and the mmcv 2.1.0 sdist (docs/install.md, "GPU check", says how to
# fill it).
#
#   bash tools/gpu_check.sh [--out DIR] [--wheels DIR] [--cpu-dry-run]
#
# Phases, each timed (about 9 minutes in all on an H100 with 16 cores, most of it the mmcv build):
#   environment  python, torch and the GPU, nvcc, ninja; the packages the image must already hold
#   wheels       the carried wheels into a target dir (GPU_CHECK_SITE, default /tmp/site) put on PYTHONPATH
#   mmcv         mmcv 2.1.0 built with its CUDA ops from the carried sdist, for this GPU's architecture only
#                (TORCH_CUDA_ARCH_LIST, default from torch.cuda.get_device_capability), MAX_JOBS = all cores;
#                or, when the wheel folder holds an mmcv wheel an earlier run built, that wheel once it works
#   ops          mmcv._ext imports, NMS runs on CUDA as on the CPU, mmdet:: configs resolve
#   tests        tests/test_cuda.py: mmcv ops on CUDA against the CPU, fp16 AMP steps, the benchmark on CUDA
#   benchmark    tools/benchmark.py at the configs' 800x1333, batch 2, random teacher weights: the student,
#                teacher, PKD and DFMSD steps of RetinaNet-R50 (X101 teacher), CrossKD on GFL-R50 (R101)
# Everything goes to the output dir (--out, else $OUT, else work_dirs/gpu_check): gpu_check.log (this output),
# test_cuda.log, benchmark_<config>.json, summary.json (the phases' times and status) and the mmcv wheel
# built (put it in the wheel folder to skip the build the next time), or mmcv_build.log when the build fails.
#
# --cpu-dry-run: what can be checked without a GPU, with the python given by PYTHON (default .venv/bin/python
# where it exists): the wheel folder holds every file; the wheels install for CPython 3.12 on manylinux x86_64
# (into a temporary target that is used only when that python is 3.12 itself); the sdist unpacks and takes the
# -std=c++20 patch (the build is skipped: that python's own mmcv is used); the CPU ops check; the tests
# (skipped without a GPU); the same benchmark runs on the CPU at 128x128, batch 1, one iteration.
#
# Settings (environment): PYTHON, GPU_CHECK_SITE, MAX_JOBS, TORCH_CUDA_ARCH_LIST, GPU_CHECK_ITERS (10),
# GPU_CHECK_WARMUP (3), GPU_CHECK_BATCH (2), GPU_CHECK_BUILD_TIMEOUT (seconds, 450), GPU_CHECK_BUDGET (seconds,
# 540 on a GPU: a benchmark run that would start later than 75 s before it is skipped, and the check ends
# 'incomplete', exit code 10, rather than be cut off by a limit on the whole command).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=tools/mmcv_build.sh
source "$ROOT/tools/mmcv_build.sh"

MMCV_VERSION=2.1.0
MMCV_SDIST="mmcv-$MMCV_VERSION.tar.gz"
# What mmengine 0.10.7, mmdet 3.3.0 and pycocotools need that the GPU machine's image lacks (the image holds
# numpy, scipy, matplotlib, opencv-python-headless, pyyaml, rich, six, tqdm, pillow, packaging, pytest): the
# Requires-Dist of each wheel, followed down. Keep in step with docs/install.md (tests/test_gpu_check.py checks).
WHEEL_FILES=(
    addict-2.4.0-py3-none-any.whl
    mmdet-3.3.0-py3-none-any.whl
    mmengine-0.10.7-py3-none-any.whl
    ninja-1.13.2-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
    platformdirs-4.14.9-py3-none-any.whl
    pycocotools-2.0.11-cp312-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl
    setuptools-80.10.2-py3-none-any.whl
    shapely-2.2.0-cp312-cp312-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
    termcolor-3.3.0-py3-none-any.whl
    terminaltables-3.1.10-py2.py3-none-any.whl
    yapf-0.43.0-py3-none-any.whl
)
# Packages the check expects the image to hold already (import names).
PREINSTALLED=(numpy scipy matplotlib cv2 yaml rich six tqdm PIL packaging pytest timm torchvision)
# name, config, distiller: one tools/benchmark.py run each.
BENCHMARKS=(
    "pkd_retina_r50 configs/pkd_retina_r50.py PKD"
    "dfmsd_retina_r50 configs/dfmsd_retina_r50.py DFMSD"
    "crosskd_gfl_r50 configs/crosskd_gfl_r50.py CrossKD"
)
RETURN_LIMIT=$((16 * 1024 * 1024))  # the largest mmcv wheel copied to the output dir

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

DRY=0
OUT_DIR=""
WHEELS="$ROOT/.whl"
ARGS=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-dry-run) DRY=1 ;;
        --out) OUT_DIR="$2"; shift ;;
        --wheels) WHEELS="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
OUT_DIR="${OUT_DIR:-${OUT:-$ROOT/work_dirs/gpu_check}}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
WHEELS="$(cd "$WHEELS" 2>/dev/null && pwd || echo "$WHEELS")"

# Everything printed also goes to $OUT_DIR/gpu_check.log: the script runs itself once more under tee.
if [ -z "${GPU_CHECK_LOGGED:-}" ]; then
    set +e
    GPU_CHECK_LOGGED=1 bash "${BASH_SOURCE[0]}" "${ARGS[@]}" --out "$OUT_DIR" 2>&1 | tee "$OUT_DIR/gpu_check.log"
    exit "${PIPESTATUS[0]}"
fi

export PYTHONUNBUFFERED=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
if [ "$DRY" = 1 ]; then
    MODE=cpu-dry-run
    if [ -z "${PYTHON:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; fi
    ITERS=1 WARMUP=0 BATCH=1 SIZE_ARGS=(--img-size 128)
else
    MODE=gpu
    ITERS="${GPU_CHECK_ITERS:-10}" WARMUP="${GPU_CHECK_WARMUP:-3}" BATCH="${GPU_CHECK_BATCH:-2}" SIZE_ARGS=()
fi
PY="${PYTHON:-python3}"
BUILD_TIMEOUT="${GPU_CHECK_BUILD_TIMEOUT:-450}"
BUDGET="${GPU_CHECK_BUDGET:-$([ "$DRY" = 1 ] && echo 86400 || echo 540)}"
SKIPPED=()  # benchmark runs left out for the budget
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
TEMPS=()
WORK="$(mktemp -d)" && TEMPS+=("$WORK")
if [ "$DRY" = 1 ] && [ -z "${GPU_CHECK_SITE:-}" ]; then
    SITE="$(mktemp -d)" && TEMPS+=("$SITE")
else
    SITE="${GPU_CHECK_SITE:-/tmp/site}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
GPU="none"
MMCV_FROM="-"

# ------------------------------------------------------------------------------------------- phases, timed
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '\033[1m[gpu_check %s]\033[0m %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

T_START="$(now)"
PHASES=()  # "name seconds status"
CURRENT=""
PHASE_T0=""

# phase NAME COMMAND...: one timed phase. A failing command stops the script (set -e); the EXIT trap then
# records the phase as failed.
phase() {
    CURRENT="$1"
    shift
    PHASE_T0="$(now)"
    log "---- $CURRENT"
    "$@"
    PHASES+=("$CURRENT $(since "$PHASE_T0") ok")
    log "---- $CURRENT: ok, $(since "$PHASE_T0") s"
    CURRENT=""
}

finish() {
    local rc=$? status=ok failed=null line name secs state skipped=""
    if [ -n "$CURRENT" ]; then
        PHASES+=("$CURRENT $(since "$PHASE_T0") failed")
        failed="\"$CURRENT\""
    fi
    if [ "$rc" = 0 ] && [ "${#SKIPPED[@]}" -gt 0 ]; then rc=10; status=incomplete; fi
    if [ "$rc" != 0 ] && [ "$status" = ok ]; then status=failed; fi
    for line in "${SKIPPED[@]}"; do skipped="$skipped${skipped:+, }\"$line\""; done
    {
        printf '{\n  "mode": "%s",\n  "status": "%s",\n  "exit_code": %s,\n  "failed_phase": %s,\n' \
            "$MODE" "$status" "$rc" "$failed"
        printf '  "total_s": %s,\n  "gpu": "%s",\n  "mmcv": "%s",\n  "skipped_benchmarks": [%s],\n  "phases": [' \
            "$(since "$T_START")" "$GPU" "$MMCV_FROM" "$skipped"
        local sep=""
        for line in "${PHASES[@]}"; do
            read -r name secs state <<<"$line"
            printf '%s\n    {"name": "%s", "seconds": %s, "status": "%s"}' "$sep" "$name" "$secs" "$state"
            sep=","
        done
        printf '\n  ]\n}\n'
    } >"$OUT_DIR/summary.json"
    log "==== $MODE: $status after $(since "$T_START") s"
    for line in "${PHASES[@]}"; do
        read -r name secs state <<<"$line"
        printf '    %-12s %8s s  %s\n' "$name" "$secs" "$state"
    done
    log "outputs in $OUT_DIR: $(cd "$OUT_DIR" && ls | tr '\n' ' ')"
    if [ "${#TEMPS[@]}" -gt 0 ]; then rm -rf "${TEMPS[@]}"; fi
    exit "$rc"
}
trap finish EXIT

# ------------------------------------------------------------------------------------------------- environment
check_environment() {
    log "mode $MODE; python $PY; wheel folder $WHEELS; target $SITE; output $OUT_DIR; $(nproc) cores"
    command -v "$PY" >/dev/null || die "no python at $PY (set PYTHON)"
    DRY="$DRY" "$PY" - "${PREINSTALLED[@]}" <<'PY'
import importlib
import os
import sys

import torch

dry = os.environ["DRY"] == "1"
print(f"python {sys.version.split()[0]} ({sys.executable}); torch {torch.__version__}, CUDA {torch.version.cuda}")
if not dry and sys.version_info[:2] != (3, 12):
    sys.exit("the carried wheels are for CPython 3.12: run this python3 or carry wheels for this one")
missing = []
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
        print(f"  {name} {getattr(module, '__version__', '')}")
    except ImportError as err:
        missing.append(f"{name} ({err})")
if missing:
    sys.exit("missing here (carry them as wheels too): " + ", ".join(missing))
if torch.cuda.is_available():
    major, minor = torch.cuda.get_device_capability()
    print(f"GPU: {torch.cuda.get_device_name()}, compute capability {major}.{minor}")
elif not dry:
    sys.exit("torch sees no CUDA GPU here (tools/gpu_check.sh --cpu-dry-run checks what a CPU can)")
PY
    if [ "$DRY" = 1 ]; then return; fi
    GPU="$("$PY" -c 'import torch; print(torch.cuda.get_device_name())')"
    if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="$PATH:/usr/local/cuda/bin"; fi
    command -v nvcc >/dev/null || die "no nvcc on the PATH: the mmcv ops cannot be compiled"
    nvcc --version | tail -n 2
    "${CXX:-c++}" --version | head -n 1
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$("$PY" -c \
        'import torch; print("%d.%d" % torch.cuda.get_device_capability())')}"
    log "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST MAX_JOBS=$MAX_JOBS"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    return 0
}

# ------------------------------------------------------------------------------------------------------ wheels
install_wheels() {
    local missing=() file paths=()
    for file in "${WHEEL_FILES[@]}" "$MMCV_SDIST"; do
        [ -f "$WHEELS/$file" ] || missing+=("$file")
    done
    [ "${#missing[@]}" = 0 ] || die "missing in $WHEELS: ${missing[*]} (docs/install.md, 'GPU check', fills it)"
    for file in "${WHEEL_FILES[@]}"; do paths+=("$WHEELS/$file"); done
    log "$(du -cb "${paths[@]}" "$WHEELS/$MMCV_SDIST" | tail -n 1 | awk '{ printf "%.1f MiB", $1 / 1048576 }') carried"
    local py312
    py312="$("$PY" -c 'import sys; print(int(sys.version_info[:2] == (3, 12)))')"
    if [ "$py312" = 1 ]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" "${paths[@]}"
        export PYTHONPATH="$SITE:$PYTHONPATH"
        export PATH="$PATH:$SITE/bin"  # ninja, where the image has none
        "$PY" - <<'PY'
import importlib

import setuptools
from packaging.version import Version

for name in ("addict", "yapf", "termcolor", "terminaltables", "shapely", "pycocotools.coco", "mmengine"):
    module = importlib.import_module(name)
    print(f"  {name} {getattr(module, '__version__', '')} ({module.__file__})")
assert Version(setuptools.__version__) < Version("81"), f"setuptools {setuptools.__version__} shadows the carried one"
import pkg_resources  # noqa: E402,F401  (mmengine resolves mmdet:: configs through it)

print(f"  setuptools {setuptools.__version__} with pkg_resources ({setuptools.__file__})")
PY
    else
        # Another python (the dry run's): the wheels must still install for CPython 3.12 on manylinux x86_64.
        "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" --only-binary=:all: \
            --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 "${paths[@]}"
        log "the ${#paths[@]} wheels install for CPython 3.12 (into $SITE, not used by $("$PY" -V 2>&1))"
    fi
    command -v ninja >/dev/null || die "no ninja: the mmcv build would run one compiler at a time"
}

# -------------------------------------------------------------------------------------------------------- mmcv
OPS_PROBE='
import torch, mmcv._ext
from mmcv.ops import nms
boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]], device="cuda")
assert nms(boxes, torch.tensor([0.9, 0.8, 0.7], device="cuda"), 0.5)[1].tolist() == [0, 2]
'

build_mmcv() {
    local src="$WORK/mmcv-$MMCV_VERSION" build_log="$WORK/mmcv_build.log" t0 progress
    tar -xzf "$WHEELS/$MMCV_SDIST" -C "$WORK"
    patch_mmcv_source "$src"
    log "$src/setup.py patched to -std=c++20 ($(grep -c -e '-std=c++20' "$src/setup.py") places)"
    if [ "$DRY" = 1 ]; then
        MMCV_FROM="$("$PY" -c 'import mmcv; print(mmcv.__version__)') of $PY (the build needs a GPU: skipped)"
        log "mmcv: $MMCV_FROM"
        return
    fi
    local carried
    carried="$(compgen -G "$WHEELS/mmcv-$MMCV_VERSION-cp312-*.whl" | head -n 1 || true)"
    if [ -n "$carried" ]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" "$carried"
        if "$PY" -c "$OPS_PROBE"; then
            MMCV_FROM="carried wheel $(basename "$carried")"
            log "mmcv: the $MMCV_FROM works here: no build"
            return
        fi
        log "the carried $(basename "$carried") does not work here: building"
        rm -rf "$SITE/mmcv" "$SITE"/mmcv-*.dist-info
    fi
    log "building mmcv $MMCV_VERSION with CUDA ops for $TORCH_CUDA_ARCH_LIST, $MAX_JOBS jobs (log: $build_log)"
    t0="$(now)"
    (   # ninja's [done/total] every 30 s
        while sleep 30 </dev/null >/dev/null 2>&1; do  # no sleep left holding the log's pipe
            progress="$(grep -o '^\[[0-9]*/[0-9]*\]' "$build_log" 2>/dev/null | tail -n 1 || true)"
            log "mmcv build: ${progress:-starting} after $(since "$t0") s"
        done
    ) &
    local ticker=$! rc=0
    # CFLAGS replaces the interpreter's compiler flags (setuptools): keep them (-O3, -DNDEBUG, ...) and add -g0,
    # no debug information (they may ask for -g): a faster build and a smaller wheel.
    local cflags
    cflags="${CFLAGS:-$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("CFLAGS") or "")')}"
    FORCE_CUDA=1 CFLAGS="$cflags -g0" timeout "$BUILD_TIMEOUT" bash -c \
        'source tools/mmcv_build.sh && build_mmcv_wheel "$@"' _ "$PY" "$src" "$WORK/dist" -v \
        >"$build_log" 2>&1 || rc=$?
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" 2>/dev/null || true
    if [ "$rc" != 0 ]; then
        grep -n -i -E 'error|fatal' "$build_log" | head -n 20 || true
        tail -n 40 "$build_log"
        cp "$build_log" "$OUT_DIR/mmcv_build.log"
        [ "$rc" = 124 ] && die "the mmcv build ran past ${BUILD_TIMEOUT} s (GPU_CHECK_BUILD_TIMEOUT)"
        die "the mmcv build failed (exit $rc): $OUT_DIR/mmcv_build.log"
    fi
    local wheel
    wheel="$(ls "$WORK"/dist/mmcv-*.whl)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" "$wheel"
    MMCV_FROM="built here in $(since "$t0") s"
    log "built $(basename "$wheel") ($(du -h "$wheel" | cut -f1)) in $(since "$t0") s"
    if [ "$(stat -c %s "$wheel")" -le "$RETURN_LIMIT" ]; then
        cp "$wheel" "$OUT_DIR/"
        log "copied to $OUT_DIR: put it in the wheel folder to skip the build next time"
    else
        log "not copied to $OUT_DIR: larger than 16 MiB"
    fi
}

# --------------------------------------------------------------------------------------------------------- ops
check_ops() {
    "$PY" - <<'PY'
import mmcv
import mmcv._ext  # noqa: F401  (the compiled ops)
import mmdet
import mmengine
import torch
from mmcv.ops import get_compiler_version, get_compiling_cuda_version, nms
from mmdet.utils import register_all_modules
from mmengine.config import Config

import kdtools

print(f"mmcv {mmcv.__version__} ({mmcv.__file__}), ops compiled by {get_compiler_version()} "
      f"for CUDA {get_compiling_cuda_version()}; mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, "
      f"kdtools from {kdtools.__file__}")
g = torch.Generator().manual_seed(0)
xy = torch.rand(300, 2, generator=g) * 100
boxes, scores = torch.cat([xy, xy + torch.rand(300, 2, generator=g) * 30 + 2], 1), torch.rand(300, generator=g)
keep = nms(boxes, scores, 0.5)[1]
if torch.cuda.is_available():
    keep_cuda = nms(boxes.cuda(), scores.cuda(), 0.5)[1]
    assert keep_cuda.is_cuda and torch.equal(keep_cuda.cpu(), keep), "NMS on CUDA differs from the CPU"
    print(f"NMS on {torch.cuda.get_device_name()}: {len(keep)} of 300 boxes kept, as on the CPU")
register_all_modules(init_default_scope=True)
cfg = Config.fromfile("configs/pkd_retina_r50.py")  # mmdet:: base configs, found through pkg_resources
print(f"configs/pkd_retina_r50.py: {cfg.model.type} {cfg.model.backbone.type}-{cfg.model.backbone.depth}, "
      f"teacher {cfg.teacher.config}")
PY
}

# ------------------------------------------------------------------------------------------------------- tests
run_tests() {
    local test_log="$OUT_DIR/test_cuda.log"
    timeout 300 "$PY" -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider 2>&1 | tee "$test_log"
    if [ "$DRY" = 0 ] && grep -q -E '[0-9]+ skipped' "$test_log"; then
        die "tests were skipped on a GPU machine (see $test_log)"
    fi
}

# --------------------------------------------------------------------------------------------------- benchmark
run_benchmarks() {
    local entry name config distiller t0 json written=()
    for entry in "${BENCHMARKS[@]}"; do
        read -r name config distiller <<<"$entry"
        if [ "$(awk -v a="$T_START" -v b="$(now)" 'BEGIN { print int(b - a) }')" -gt $((BUDGET - 75)) ]; then
            log "skipping the $name benchmark: less than 75 s left of the ${BUDGET} s budget (GPU_CHECK_BUDGET)"
            SKIPPED+=("$name")
            continue
        fi
        json="$OUT_DIR/benchmark_$name.json"
        t0="$(now)"
        log "benchmark $config: $distiller, $ITERS iterations after $WARMUP warm-up, batch $BATCH"
        timeout 240 "$PY" tools/benchmark.py --config "$config" --distillers "$distiller" --random-teacher \
            --iters "$ITERS" --warmup "$WARMUP" --batch-size "$BATCH" "${SIZE_ARGS[@]}" --json "$json"
        written+=("$json")
        log "benchmark $name: $(since "$t0") s"
    done
    [ "${#written[@]}" -gt 0 ] || return 0
    "$PY" - "${written[@]}" <<'PY'
import json
import sys

print("| config | distiller | input | precision | student (ms) | teacher (ms) | kd step (ms) | kd / (s + t) "
      "| peak kd (MiB) |")
print("|---|---|---|---|---:|---:|---:|---:|---:|")
for path in sys.argv[1:]:
    with open(path) as f:
        result = json.load(f)
    spec = result["spec"]
    h, w = spec["image_size"]
    precision = "fp16 AMP" if spec["amp"] else "fp32"
    for row in result["distillers"]:
        print(f"| {result['config']} | {row['name']} | {spec['batch_size']} x {h}x{w} | {precision} "
              f"| {row['t_student'] * 1e3:.1f} | {row['t_teacher'] * 1e3:.1f} | {row['t_kd'] * 1e3:.1f} "
              f"| {row['overhead']:.2f} | {row['peak_mib']:.0f} |")
PY
}

phase environment check_environment
phase wheels install_wheels
phase mmcv build_mmcv
phase ops check_ops
phase tests run_tests
phase benchmark run_benchmarks
