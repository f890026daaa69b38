"""Triton Python-backend model: the ``model.onnx`` beside this file through ONNX Runtime.

Copied as ``REPO/<name>/1/model.py`` by :func:`edgesr.export.triton_repo.write_triton_repo`
with ``backend="python"``, for a Triton server without the ONNX Runtime backend (the one in
``nvidia-pytriton``). It runs inside Triton's Python stub, which provides
``triton_python_backend_utils``; it needs numpy and onnxruntime in the stub's Python
(``PYTHONPATH``). Tensor names come from the model configuration, so the same config fields
as the ``onnxruntime_onnx`` variant hold. Each request runs as it came (a batch of same-size
images); a bad request gets an error response and the others still run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils  # provided by Triton's Python stub


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        model_file = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        self.session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])

    def _run(self, request) -> object:  # noqa: ANN001 (pb_utils.InferenceRequest)
        lr = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
        if lr.dtype != np.float32 or lr.ndim != 4:
            raise ValueError(f"{self.input_name}: expected float32 [N, C, H, W], got {lr.dtype} "
                             f"with {lr.ndim} dimensions")
        sr = self.session.run([self.output_name], {self.input_name: lr})[0]
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output_name, sr)])

    def execute(self, requests: list) -> list:
        responses = []
        for request in requests:
            try:
                responses.append(self._run(request))
            except Exception as exc:  # noqa: BLE001 (one bad request must not fail the others)
                responses.append(pb_utils.InferenceResponse(output_tensors=[],
                                                            error=pb_utils.TritonError(str(exc))))
        return responses
