# Building mmcv 2.1.0 with its compiled ops: the steps tools/setup_env.sh and tools/gpu_check.sh share.
# Source this file, then call the functions; it sets no options of the calling shell.

# patch_mmcv_source SRC: torch >= 2.10 headers need C++20; mmcv 2.1.0's setup.py asks for C++14/17 (cxx and
# nvcc flags alike). Fails if the sdist's setup.py no longer has the flags this patch expects.
patch_mmcv_source() {
    local setup_py="$1/setup.py"
    sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$setup_py"
    if grep -q -e '-std=c++14' -e '-std=c++17' "$setup_py" || ! grep -q -e '-std=c++20' "$setup_py"; then
        echo "patch_mmcv_source: $setup_py was not patched to -std=c++20" >&2
        return 1
    fi
}

# build_mmcv_wheel PYTHON SRC DIST [pip options...]: build the wheel of the (patched) sdist tree SRC into DIST
# against the torch that PYTHON imports (no build isolation: torch and setuptools<81 must be importable),
# with the compiled ops (MMCV_WITH_OPS=1). MAX_JOBS, FORCE_CUDA and TORCH_CUDA_ARCH_LIST pass through.
build_mmcv_wheel() {
    local python="$1" src="$2" dist="$3"
    shift 3
    (
        cd "$src"
        MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
            "$python" -m pip --disable-pip-version-check wheel --no-build-isolation --no-deps "$@" . -w "$dist"
    )
}
