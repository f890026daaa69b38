"""A real Triton server (the tritonserver inside nvidia-pytriton, on 127.0.0.1) serves a model
repository written by edgesr.export.triton_repo, and answers tritonclient requests over HTTP.

That server has only Triton's Python backend, so the repository is written with
``backend="python"`` (the same config fields, served by ONNX Runtime inside the backend).
Oracle: plain ONNX Runtime on the same input and the same ONNX file."""

from __future__ import annotations

import numpy as np
import pytest

from edgesr.export.triton_repo import write_triton_repo
from edgesr.weights import shipped_onnx

pytest.importorskip("pytriton", reason="nvidia-pytriton is not installed (pip install 'edgesr[serve]')")
httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")
ort = pytest.importorskip("onnxruntime")

from triton_server_util import TritonServer, tcp_local_addresses  # noqa: E402 (after the skips)

MODEL = "lkdn_x4"


def _request(client, lr: np.ndarray, dtype: str = "FP32"):  # noqa: ANN001, ANN202
    tensor = httpclient.InferInput("lr", list(lr.shape), dtype)
    tensor.set_data_from_numpy(lr)
    return client.infer(MODEL, [tensor], outputs=[httpclient.InferRequestedOutput("sr")])


def test_triton_answers_like_onnxruntime_and_survives_a_bad_request(tmp_path) -> None:
    onnx_file = shipped_onnx(MODEL)
    write_triton_repo(onnx_file, tmp_path / "repo", backend="python")
    reference = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(19)
    one = rng.random((1, 3, 21, 17), dtype=np.float32)
    two = rng.random((2, 3, 16, 24), dtype=np.float32)  # a batch of two equal-size tiles
    with TritonServer(tmp_path / "repo", tmp_path) as server:
        client = httpclient.InferenceServerClient(server.http_url)
        try:
            assert client.is_model_ready(MODEL)
            addresses = tcp_local_addresses(server.process.pid)
            assert addresses and all(a.startswith(("127.", "::ffff:127.")) for a in addresses), addresses
            for lr in (one, two):
                sr = _request(client, lr).as_numpy("sr")
                np.testing.assert_array_equal(sr, reference.run(["sr"], {"lr": lr})[0])
            with pytest.raises(Exception, match="expects .FP32."):
                _request(client, one.astype(np.float64), "FP64")  # not the config's TYPE_FP32
            assert client.is_server_live() and client.is_model_ready(MODEL)
            np.testing.assert_array_equal(_request(client, one).as_numpy("sr"),
                                          reference.run(["sr"], {"lr": one})[0])
        finally:
            client.close()  # an open connection would hold Triton's shutdown for 30 s
    assert server.process is not None and server.process.returncode is not None
