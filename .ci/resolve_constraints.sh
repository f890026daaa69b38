#!/usr/bin/env bash
# Each constraints file resolves against the package registry for the platform and Python it
# is written for (pip's resolver only: --dry-run, nothing installed). A registry hiccup gets
# one retry; a pin that has no wheel for its platform fails on both tries.
set -euo pipefail
cd "$(dirname "$0")/.."

# pip matches --platform tags literally, so each glibc level a wheel may be tagged with is named
manylinux() {  # ARCH -> --platform flags from manylinux_2_35 (Ubuntu 22.04) down to 2014
    local arch=$1 flags="" v
    for v in 2_35 2_34 2_31 2_28 2_27 2_17; do flags+=" --platform manylinux_${v}_${arch}"; done
    echo "$flags --platform manylinux2014_${arch} --platform linux_${arch}"
}

resolve() {  # LABEL PYTHON PLATFORM_FLAGS CONSTRAINTS REQUIREMENTS...
    local label=$1 python=$2 platforms=$3 constraints=$4
    shift 4
    local cmd=(python -m pip install --dry-run --quiet --ignore-installed --only-binary=:all:
               --python-version "$python" $platforms -c "$constraints" "$@")
    if "${cmd[@]}" >/dev/null 2>&1 || { sleep 10; "${cmd[@]}" >/dev/null; }; then
        echo "resolves: $constraints ($label, Python $python)"
    else
        echo "does not resolve: $constraints ($label, Python $python)" >&2
        return 1
    fi
}

# CPU development install (this CI's own command) on Linux x86-64
resolve "Linux x86-64" 3.11 "$(manylinux x86_64)" constraints/cpu.txt ".[cpu,export,train,dev,report,video]"
# Jetson, JetPack 6.1/6.2: Ubuntu 22.04, Python 3.10, aarch64 (Dockerfile.jetson's install)
resolve "JetPack 6, aarch64" 3.10 "$(manylinux aarch64)" constraints/jetson.txt ".[cpu]" cuda-python
# The CUDA 12 runtime stack (NVIDIA's TensorRT 25.08 container: Python 3.12). tensorrt-cu12 and
# tensorrt-cu12-libs exist only as source packages that fetch NVIDIA's libraries when installed,
# so the wheel-only resolver is given the rest of the stack with the same pins. torch is left
# out: PyPI's torch 2.13.0 is the CUDA 13 build (it needs cuda-bindings 13), which cannot sit
# beside cuda-python 12.6; a CUDA 12 torch comes from PyTorch's own index (download.pytorch.org).
resolve "CUDA 12 x86-64" 3.12 "$(manylinux x86_64)" constraints/trt-cu12.txt \
    ".[gpu]" tensorrt-cu12-bindings cuda-python triton
