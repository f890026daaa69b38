# GPU image for edgesr: TensorRT + CUDA from NVIDIA's TensorRT container, then edgesr with the
# GPU extras (CUDA builds of torch and onnxruntime-gpu come from PyPI inside this image).
#   docker build -t edgesr .
#   docker run --gpus all -v $PWD:/data edgesr edgesr-run /data/in.png -o /data/out.png --engine trt
# For a Jetson, use an L4T base image of your JetPack release instead (l4t-tensorrt / l4t-jetpack)
# and install only the runtime: pip install ".[gpu]" (no torch needed for .onnx models).
ARG TRT_IMAGE=nvcr.io/nvidia/tensorrt:25.10-py3
FROM ${TRT_IMAGE}

WORKDIR /opt/edgesr
COPY pyproject.toml README.md ./
COPY edgesr ./edgesr
COPY export ./export
COPY runtime ./runtime
COPY benchmarks ./benchmarks

# tensorrt is already in the base image; cuda-python/pycuda for device memory.
RUN python3 -m pip install --no-cache-dir ".[gpu,export]" cuda-python

# Engines and exported models are cached here; mount a volume to keep them between runs.
ENV EDGESR_CACHE_DIR=/cache
VOLUME ["/cache"]
ENTRYPOINT []
CMD ["edgesr-run", "--help"]
