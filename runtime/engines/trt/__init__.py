"""TensorRT for edgesr, split as NVIDIA's Polygraphy splits it (no torch anywhere here).

Loaders: ``onnx_bytes`` (read the ONNX file, tag DSConv nodes), ``build`` (network, config,
profile, timing cache, build), ``engine_bytes`` (those steps composed), ``options``,
``profile``. Runner: ``runner`` (``TrtEngine``, ``available``). The engine cache and its
trust checks: ``cache``. The DSConv plugin: ``plugin`` (tensorrt.plugin registration),
``plugin_launch`` (build target, JIT launch), ``kernel`` (the Triton kernel),
``kernel_compile`` (Triton -> PTX). CUDA memory: ``cuda_memory`` (cuda-python).

TensorRT and cuda-python are imported lazily, where they are used, so every module imports
on a machine without them; ``kernel`` imports triton when it is installed.
"""
