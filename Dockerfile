# edgesr on x86-64 with an NVIDIA GPU: NVIDIA's TensorRT container (CUDA 12 user space), then
# edgesr's runtime with the `trt-cu12` extra, which pins the stack the tests check against:
# TensorRT 10.13.0.35 (tensorrt.plugin with aot_impl), cuda-python 12.x and triton.
#   docker build -t edgesr .
#   docker run --gpus all -v "$PWD:/data" edgesr edgesr-run /data/in.png -o /data/out.png --engine trt
#   docker run --gpus all edgesr bash benchmarks/gpu_check.sh    (the one-shot GPU check)
# The host driver must support CUDA 12 (nvidia-smi shows "CUDA Version: 12.x" or newer).
# No GPU was available where this file was written: building and running it needs a GPU.
ARG TRT_IMAGE=nvcr.io/nvidia/tensorrt:25.08-py3
FROM ${TRT_IMAGE}

WORKDIR /opt/edgesr
COPY pyproject.toml README.md ./
COPY edgesr ./edgesr
COPY export ./export
COPY runtime ./runtime
COPY benchmarks ./benchmarks
COPY constraints ./constraints

# The image's own `tensorrt` Python package would shadow (or be shadowed by) the pinned
# tensorrt-cu12 wheel; remove it so exactly one TensorRT is importable. The `export` extra
# (torch) is for gpu_check.sh, which exports the models it builds engines from.
RUN python3 -m pip uninstall --yes tensorrt \
    && python3 -m pip install --no-cache-dir -c constraints/trt-cu12.txt ".[gpu,export,trt-cu12]"

# Engines, timing caches and exported models are cached here (private to the user: the
# engine cache refuses folders others can write); mount a volume to keep them.
ENV EDGESR_CACHE_DIR=/cache
RUN mkdir -m 700 /cache
VOLUME ["/cache"]
ENTRYPOINT []
CMD ["edgesr-run", "--help"]
