#!/usr/bin/env bash
# Create .venv with everything kdtools needs, mmcv 2.1.0 with its compiled ops included.
#
# The mmcv wheel is built once from its sdist and cached outside the repository under
# $KDTOOLS_CACHE (default ~/.cache/kdtools), keyed by mmcv/torch/Python/device, so later
# setups on the same machine only install it. Packages are installed with uv, whose cache
# links them into a new environment in seconds. Idempotent: re-running on a complete
# environment only re-checks it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
CACHE="${KDTOOLS_CACHE:-$HOME/.cache/kdtools}"
MMCV_VERSION=2.1.0
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1

# shellcheck source=tools/mmcv_build.sh
source "$ROOT/tools/mmcv_build.sh"  # patch_mmcv_source, build_mmcv_wheel (shared with tools/gpu_check.sh)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
UV=("$VENV/bin/uv" pip install -q --python "$PY")

log "installing torch $TORCH_VERSION, torchvision $TORCHVISION_VERSION and build tools"
"${PIP[@]}" install -q --upgrade "pip>=24" uv
"${UV[@]}" wheel "setuptools>=77,<81" ninja "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

# Build the mmcv wheel for CUDA only where a GPU and nvcc are both present.
if command -v nvcc >/dev/null 2>&1 && "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    DEVICE="cuda$("$PY" -c 'import torch; print(torch.version.cuda)')"
    export FORCE_CUDA=1
else
    DEVICE=cpu
    export FORCE_CUDA=0
fi
PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")')"
WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$PYTAG-$DEVICE"

if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION with compiled ops for $DEVICE (once per machine, ~15 min on 2 cores)"
    BUILD="$(mktemp -d)"
    trap 'rm -rf "$BUILD"' EXIT
    "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
    # torch >= 2.10 headers need C++20; mmcv 2.1.0 asks for C++14/17.
    patch_mmcv_source "$BUILD/mmcv-$MMCV_VERSION"
    build_mmcv_wheel "$PY" "$BUILD/mmcv-$MMCV_VERSION" "$BUILD/dist" -q
    mkdir -p "$WHEEL_DIR"
    cp "$BUILD"/dist/mmcv-*.whl "$WHEEL_DIR/"
fi

log "installing mmcv (cached wheel), mmengine, mmdet, pycocotools, timm and kdtools"
"${UV[@]}" "$WHEEL_DIR"/mmcv-*.whl -r "$ROOT/requirements.txt"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

"$PY" - <<'PY'
import mmcv, mmdet, mmengine, torch
try:
    import mmcv._ext  # noqa: F401  (the compiled ops)
except ImportError as err:
    raise SystemExit(f"mmcv was installed without its compiled ops (mmcv._ext): {err}")
from mmcv.ops import nms, RoIAlign  # noqa: F401
print(f"torch {torch.__version__}, mmcv {mmcv.__version__} (ops), mmengine {mmengine.__version__}, mmdet {mmdet.__version__}")
PY
log "ready: $VENV"
