"""``edgesr-run IN_DIR -o OUT_DIR --ray`` (edgesr.runtime.ray_batch_run): interrupted with
Ctrl-C (SIGINT) after its first output, then run again; the second run finishes the rest.

Each run starts its own local Ray cluster inside a private network namespace (tests/ray_util.py:
only loopback). Oracle: ``edgesr-run``'s folder mode on the same folder and flags, file by
file, byte for byte. Two Ray starts: about a minute on this shared 2-core machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ray_util import private_command, private_network_works, ray_environment

from edgesr.weights import shipped_onnx

MODEL = shipped_onnx("lkdn_x4")
IMAGES = [f"img{i}.png" for i in range(6)] + ["sub/b.jpg", "sub/gray16.png"]
FLAGS = ["--model", str(MODEL), "--engine", "ort", "--suffix", "x4", "--ext", "png"]
OUTPUTS = sorted(str(Path(n).with_name(f"{Path(n).stem}_x4.png")) for n in IMAGES)


def _folder(root: Path) -> Path:
    import cv2

    rng = np.random.default_rng(23)
    (root / "in" / "sub").mkdir(parents=True)
    for name in IMAGES[:6]:
        cv2.imwrite(str(root / "in" / name), rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    cv2.imwrite(str(root / "in" / "sub" / "b.jpg"), rng.integers(0, 256, (17, 23, 3), dtype=np.uint8))
    cv2.imwrite(str(root / "in" / "sub" / "gray16.png"), rng.integers(0, 65536, (16, 18), dtype=np.uint16))
    (root / "in" / "broken.png").write_bytes(b"not an image")
    return root / "in"


def _written(out: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``out`` (hidden temp files included): (inode, mtime in ns)."""
    found = {}
    for path in out.rglob("*") if out.exists() else []:
        try:
            if path.is_file():
                found[path.relative_to(out).as_posix()] = (path.stat().st_ino, path.stat().st_mtime_ns)
        except FileNotFoundError:  # a temp file committed meanwhile
            continue
    return found


def _outputs(out: Path) -> list[str]:
    return [name for name in _written(out) if not Path(name).name.startswith(".")]


def _command(src: Path, out: Path) -> list[str]:
    return private_command(f"exec {sys.executable} -m edgesr.runtime.cli {src} -o {out} "
                           f"{' '.join(FLAGS)} --ray")


def _interrupt_after_first_output(src: Path, out: Path, logs: Path) -> int:
    with ray_environment() as env, open(logs / "1.out", "w") as o, open(logs / "1.err", "w") as e:
        process = subprocess.Popen(_command(src, out), env=env, stdout=o, stderr=e)
        deadline = time.monotonic() + 240
        while not _outputs(out):
            assert process.poll() is None and time.monotonic() < deadline, (logs / "1.err").read_text()[-3000:]
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)  # Ctrl-C
        return process.wait(timeout=120)


def test_interrupted_ray_run_resumes_and_equals_folder_mode(tmp_path) -> None:
    pytest.importorskip("ray", reason="ray[data] is not installed (pip install -e '.[serve]')")
    why = private_network_works()
    if why:
        pytest.skip(why)
    from edgesr.runtime.cli import main as run_main

    src = _folder(tmp_path)
    assert run_main([str(src), "-o", str(tmp_path / "folder_mode"), *FLAGS]) == 1  # broken.png fails
    out = tmp_path / "ray"
    assert _interrupt_after_first_output(src, out, tmp_path) == 130, (tmp_path / "1.err").read_text()[-3000:]
    first = _written(out)
    assert "edgesr-run: interrupted" in (tmp_path / "1.err").read_text()
    assert len(first) >= 1, "the interrupt came before any output was written"
    assert len(first) < len(OUTPUTS), f"every output was written before the interrupt: {sorted(first)}"
    assert set(first) <= set(OUTPUTS), f"a temporary or stray file was left: {sorted(set(first) - set(OUTPUTS))}"

    with ray_environment() as env:
        done = subprocess.run(_command(src, out), env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 1, done.stderr[-3000:]  # broken.png, listed at the end
    assert (f"{len(IMAGES) - len(first)} upscaled, {len(first)} skipped (output exists, --overwrite "
            "redoes them), 1 failed") in done.stdout
    failed = [line for line in done.stderr.splitlines() if line.startswith("edgesr-run: error:")]
    assert len(failed) == 1 and "1 of 9 images failed (broken.png)" in failed[0]
    after = _written(out)
    assert sorted(after) == OUTPUTS
    assert {name: after[name] for name in first} == first  # the first run's files were not redone
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (tmp_path / "folder_mode" / name).read_bytes(), name


def test_ray_flags_refused_in_one_line(tmp_path, monkeypatch, capsys) -> None:
    from edgesr.runtime.cli import main as run_main

    src = _folder(tmp_path)
    image = src / IMAGES[0]
    cases = [([str(image), "-o", str(tmp_path / "o.png"), "--ray"], "--ray runs a folder"),
             ([str(src), "-o", str(tmp_path / "o"), "--ray", "--ray-actors", "0"], "--ray-actors")]
    monkeypatch.setitem(sys.modules, "ray", None)  # a runtime-only install: no ray
    cases.append(([str(src), "-o", str(tmp_path / "o"), *FLAGS, "--ray"], "pip install -e '.[serve]'"))
    for argv, message in cases:
        assert run_main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists() and not os.path.exists(tmp_path / "o.png")
