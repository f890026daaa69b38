#!/usr/bin/env bash
# One-shot GPU check for edgesr (paste its output into an issue). Needs an NVIDIA GPU.
#   bash benchmarks/gpu_check.sh          # both parts; the second only if TensorRT imports
# Part 1 needs torch with CUDA and triton, no TensorRT (pip install -e ".[export,dev]").
# Part 2 needs TensorRT: pip install -e ".[gpu,export,trt-cu12]" -c constraints/trt-cu12.txt,
# or the x86 Dockerfile. Meant to finish within 10 minutes on one GPU (most of it is the
# ten TensorRT engine builds, four of them for the INT8 table: the QDQ graphs of lkdn_x4 and
# osffnet_x4 and their FP32 engines); the engine cache lives in a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
export TRITON_DEFAULT_FP_FUSION=1

echo "## edgesr GPU check ($(date -u +%Y-%m-%dT%H:%MZ))"
nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader || true
python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| triton', triton.__version__)"

echo; echo "### 1. Triton DSConv kernel vs numpy, torch CUDA vs CPU"
timeout 180 python3 -m edgesr.benchmarks.gpu_check kernel

if python3 -c "import tensorrt, tensorrt.plugin" 2>/dev/null; then
    python3 -c "import tensorrt; print('TensorRT', tensorrt.__version__)"
    echo; echo "### 2. TensorRT engines vs ONNX Runtime (FP32, FP16; then INT8 QDQ)"
    timeout 600 python3 -m edgesr.benchmarks.gpu_check trt
else
    echo; echo "TensorRT (with tensorrt.plugin) is not importable: part 2 skipped"
fi
