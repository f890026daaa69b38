"""edgesr-serve (edgesr.runtime.serve): a real tritonserver (nvidia-pytriton's) on 127.0.0.1,
real images sent with tritonclient over HTTP.

Oracle: ``edgesr-run``'s PNG for the same image with the same flags, decoded with OpenCV; the
server's answer must equal it byte for byte (whole image, and an image cut into tiles).
Error responses and message texts are Triton's (type, rank, channels) or the server's
own (the pixel budget). The tests share one server (module fixture, started once: 10-20 s
here); the last one stops it with SIGTERM. No latency is asserted."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgesr.weights import shipped_onnx

MODEL = shipped_onnx("lkdn_x4")
NAME = "sr"
#: small tiles, so a 40x56 image goes through several (edgesr-run gets the same flags)
TILING = ["--tile", "24", "--overlap", "8"]
MAX_PIXELS = 5000


def _image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _edgesr_run(rgb: np.ndarray, folder: Path) -> np.ndarray:
    """What edgesr-run writes for ``rgb`` (saved as a PNG first), decoded back to RGB."""
    import cv2

    from edgesr.runtime.cli import main as run_main

    folder.mkdir()
    cv2.imwrite(str(folder / "in.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert run_main([str(folder / "in.png"), "-o", str(folder / "out.png"), "--model", str(MODEL),
                     "--engine", "ort", *TILING]) == 0
    return cv2.cvtColor(cv2.imread(str(folder / "out.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:  # ended meanwhile
            continue
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):  # noqa: ANN201
    pytest.importorskip("pytriton", reason="nvidia-pytriton is not installed (pip install -e '.[serve]')")
    pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")
    from edgesr.runtime.serve_process import ServerProcess

    process = ServerProcess(["--model", str(MODEL), "--engine", "ort", *TILING,
                             "--max-pixels", str(MAX_PIXELS)], tmp_path_factory.mktemp("serve"), name=NAME)
    with process:
        yield process


@pytest.fixture()
def client(server):  # noqa: ANN001, ANN201
    import tritonclient.http as http

    client = http.InferenceServerClient(server.http_url)
    yield client
    client.close()  # an open connection would hold tritonserver's shutdown


def _infer(client, array: np.ndarray, dtype: str = "UINT8") -> np.ndarray:  # noqa: ANN001
    import tritonclient.http as http

    tensor = http.InferInput("image", list(array.shape), dtype)
    tensor.set_data_from_numpy(array)
    return client.infer(NAME, [tensor]).as_numpy("upscaled")


def test_answers_equal_edgesr_run_byte_for_byte(client, tmp_path) -> None:
    for i, (height, width) in enumerate(((20, 24), (40, 56))):  # one tile; several tiles
        rgb = _image(height, width, seed=i)
        expected = _edgesr_run(rgb, tmp_path / str(i))
        answer = _infer(client, rgb)
        assert answer.dtype == np.uint8 and answer.shape == (4 * height, 4 * width, 3)
        np.testing.assert_array_equal(answer, expected)


def test_bad_requests_get_errors_and_the_server_stays_up(client, tmp_path) -> None:
    from tritonclient.utils import InferenceServerException

    good = _image(12, 10, seed=5)
    bad = [(good.astype(np.float32), "FP32", "expects 'UINT8'"),  # Triton's own checks
           (good[:, :, 0].copy(), "UINT8", "unexpected shape"),
           (np.dstack([good, good[:, :, :1]]), "UINT8", "unexpected shape"),  # RGBA
           (np.zeros((0, 5, 3), np.uint8), "UINT8", None),  # empty: refused inside PyTriton's stub
           (_image(80, 70, seed=6), "UINT8", f"above this server's budget of {MAX_PIXELS:,}")]
    for array, dtype, message in bad:  # each an error response, then the server still answers
        with pytest.raises(InferenceServerException, match=message):
            _infer(client, array, dtype)
        assert client.is_server_ready() and client.is_model_ready(NAME)
    np.testing.assert_array_equal(_infer(client, good), _edgesr_run(good, tmp_path / "good"))


def test_bounded_load_all_answers_correct(server, tmp_path) -> None:
    from edgesr.benchmarks.serve_load import run_load

    rgb = _image(8, 8, seed=7)
    report = run_load(server.http_url, NAME, rgb, expected=_edgesr_run(rgb, tmp_path / "ref"),
                      requests=200, concurrency=8)
    print(report.describe())  # shown with -s; figures for docs come from edgesr-bench serve
    assert report.errors == [] and report.wrong == 0 and len(report.latencies_ms) == 200


def test_edgesr_bench_serve_prints_the_figures(server, capsys) -> None:
    from edgesr.benchmarks.cli import main as bench_main

    assert bench_main(["serve", "--url", server.http_url, "--name", NAME, "--requests", "16",
                       "--concurrency", "4", "--size", "8x8"]) == 0
    out = capsys.readouterr().out
    assert "16 requests, 4 concurrent" in out and "p50 " in out and "p99 " in out
    assert "errors 0, wrong 0" in out


def test_every_socket_is_on_loopback(server, client) -> None:
    from triton_server_util import tcp_local_addresses

    _infer(client, _image(8, 8, seed=8))  # connections open now, not only listeners
    pids = _descendants(server.process.pid)
    addresses = [a for pid in pids for a in tcp_local_addresses(pid)]
    assert len(pids) >= 2, pids  # edgesr-serve and its tritonserver at least
    assert len(addresses) >= 3 and all(a.startswith(("127.", "::ffff:127.")) for a in addresses), addresses


def test_sigterm_stops_it_cleanly(server) -> None:
    pids = _descendants(server.process.pid)
    assert server.stop() == 0, server.tail()
    assert "edgesr-serve: stopped" in server.out.read_text()
    # tritonserver's own children end a moment after it (seen under load): wait for them, up to
    # 20 s; one still running then was left behind.
    deadline = time.monotonic() + 20
    while _running(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(pids)


def _running(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if "zombie" not in Path(f"/proc/{pid}/status").read_text():
                alive.append(pid)
        except FileNotFoundError:
            continue
    return alive


def test_without_the_serve_extra_it_refuses_in_one_line(monkeypatch, capsys) -> None:
    from edgesr.runtime.serve_cli import main as serve_main

    monkeypatch.setitem(sys.modules, "pytriton", None)  # what a runtime-only install sees
    monkeypatch.setitem(sys.modules, "pytriton.triton", None)
    assert serve_main(["--model", str(MODEL), "--engine", "ort"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install -e '.[serve]'" in err[0]


@pytest.mark.parametrize("flags", [["--http-port", "0"], ["--grpc-port", "8000"], ["--max-pixels", "0"]])
def test_bad_flags_are_one_line(flags, capsys) -> None:
    from edgesr.runtime.serve_cli import main as serve_main

    assert serve_main(flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgesr-serve: error:")
