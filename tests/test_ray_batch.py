"""edgesr-batch (edgesr.runtime.ray_batch): folder mode through Ray Data on a local Ray cluster.

The cluster runs inside a private network namespace that the test creates (``unshare --net``,
only ``lo`` up; tests/ray_util.py), so Ray, which registers a node under the machine's network
address, can reach nothing but loopback. Oracle: ``edgesr-run``'s folder mode on the same
folder, file by file, byte for byte."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ray_util import IP, private_command, private_network_works, ray_environment

from edgesr.runtime.ray_batch_cli import main as batch_main
from edgesr.weights import shipped_onnx

MODEL = shipped_onnx("lkdn_x4")


def _folder(root: Path) -> Path:
    import cv2

    rng = np.random.default_rng(19)
    (root / "in" / "sub").mkdir(parents=True)
    cv2.imwrite(str(root / "in" / "a.png"), rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    cv2.imwrite(str(root / "in" / "sub" / "b.jpg"), rng.integers(0, 256, (17, 23, 3), dtype=np.uint8))
    cv2.imwrite(str(root / "in" / "sub" / "gray16.png"), rng.integers(0, 65536, (16, 18), dtype=np.uint16))
    cv2.imwrite(str(root / "in" / "c.png"), rng.integers(0, 256, (15, 15, 3), dtype=np.uint8))
    (root / "in" / "broken.png").write_bytes(b"not an image")
    return root / "in"


def test_ray_batch_equals_folder_mode_resumes_and_lists_failures(tmp_path) -> None:
    pytest.importorskip("ray", reason="ray[data] is not installed (pip install -e '.[serve]')")
    why = private_network_works()
    if why:
        pytest.skip(why)
    from edgesr.runtime.cli import main as run_main

    src = _folder(tmp_path)
    assert run_main([str(src), "-o", str(tmp_path / "folder_mode"), "--model", str(MODEL),
                     "--engine", "ort"]) == 1  # broken.png fails, the others are written
    out = tmp_path / "ray"
    (out).mkdir()
    (out / "c.png").write_bytes(b"left by an interrupted run")  # must be skipped, untouched
    links = tmp_path / "links.txt"
    script = (f"{IP} -o link show > {links} && exec {sys.executable} -m "
              f"edgesr.runtime.ray_batch_cli {src} -o {out} --model {MODEL} --engine ort")
    with ray_environment() as env:
        done = subprocess.run(private_command(script), env=env, capture_output=True, text=True,
                              timeout=240)
    assert [line.split(":")[1].strip() for line in links.read_text().splitlines()] == ["lo"]
    assert done.returncode == 1, done.stderr[-3000:]
    assert "3 upscaled, 1 skipped (output exists), 1 failed" in done.stdout
    failed = [line for line in done.stderr.splitlines() if line.startswith("edgesr-batch: error:")]
    assert len(failed) == 1 and "broken.png" in failed[0]
    assert (out / "c.png").read_bytes() == b"left by an interrupted run"
    for name in ("a.png", "sub/b.jpg", "sub/gray16.png"):
        assert (out / name).read_bytes() == (tmp_path / "folder_mode" / name).read_bytes(), name
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a.png", "c.png", "sub/b.jpg", "sub/gray16.png"]


def test_without_ray_it_refuses_in_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what a runtime-only install sees: no ray
    src = _folder(tmp_path)
    assert batch_main([str(src), "-o", str(tmp_path / "out"), "--model", str(MODEL)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install -e '.[serve]'" in err[0]
    assert not (tmp_path / "out").exists()
