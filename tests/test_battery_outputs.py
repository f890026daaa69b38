"""Output paths through the real console scripts (issue 9, battery part 2): inputs never
replaced, read-only places refused before the work, no-clobber at commit time (two real
processes), long names, closed pipes, resumed folder runs.

Each refused case: exit 2, one stderr line, no traceback, every pre-existing file unchanged.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from battery_util import assert_ok, assert_refused, fingerprint, read_only, run, script
from conftest import TOY_SCALE

H, W = 32, 40


@pytest.fixture()
def photo_dir(tmp_path: Path) -> Path:
    """Two real photo crops as PNG (the evaluation/upscaling inputs)."""
    skdata = pytest.importorskip("skimage.data")
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(skdata.astronaut()[100 : 100 + H, 180 : 180 + W]).save(folder / "t1.png")
    Image.fromarray(skdata.chelsea()[60 : 60 + H, 100 : 100 + W]).save(folder / "t2.png")
    return folder


def _upscale(src: Path, out: Path, model: Path, *extra: object) -> subprocess.CompletedProcess[str]:
    return run("edgesr-run", src, "-o", out, "--model", model, "--threads", "1", *extra)


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


# --------------------------------------------------------------------- edgesr-run


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
@pytest.mark.parametrize("spelling", ["same path", "symlink", "hard link"])
def test_run_never_writes_onto_its_input(spelling: str, overwrite: list[str], photo_dir: Path,
                                         toy_onnx: Path) -> None:
    src = photo_dir / "t1.png"
    out = {"same path": src, "symlink": photo_dir / "link.png", "hard link": photo_dir / "hard.png"}[spelling]
    if spelling == "symlink":
        out.symlink_to(src.name)
    elif spelling == "hard link":
        out.hardlink_to(src)
    before = fingerprint([photo_dir])
    assert_refused(_upscale(src, out, toy_onnx, *overwrite), "edgesr-run", "never overwrites an input")
    assert fingerprint([photo_dir]) == before


def test_existing_output_is_kept_and_overwrite_replaces_it(photo_dir: Path, toy_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"someone else's file")
    assert_refused(_upscale(photo_dir / "t1.png", out, toy_onnx), "edgesr-run", "already exists")
    assert out.read_bytes() == b"someone else's file"
    assert_ok(_upscale(photo_dir / "t1.png", out, toy_onnx, "--overwrite"))
    assert _size(out) == (TOY_SCALE * W, TOY_SCALE * H)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "photos"]  # no temp left


def test_a_250_byte_output_name_works(photo_dir: Path, toy_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / ("n" * 246 + ".png")  # legal (NAME_MAX 255); the temp name must fit too
    assert_ok(_upscale(photo_dir / "t1.png", out, toy_onnx))
    assert _size(out) == (TOY_SCALE * W, TOY_SCALE * H)


def test_read_only_output_folder_is_refused_before_inference(photo_dir: Path, toy_onnx: Path,
                                                             tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        result = _upscale(photo_dir / "t1.png", locked / "out.png", toy_onnx)
        assert_refused(result, "edgesr-run", "not writable")
        assert "engine:" not in result.stdout  # refused before the model was even opened
        folder_run = _upscale(photo_dir, locked / "new_folder", toy_onnx)
        assert_refused(folder_run, "edgesr-run", "new_folder")
    assert list(locked.iterdir()) == []


def test_two_processes_writing_one_new_output_one_wins(photo_dir: Path, toy_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "race.png"
    command = [*script("edgesr-run"), str(photo_dir / "t1.png"), "-o", str(out), "--model",
               str(toy_onnx), "--threads", "1"]
    racers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in racers]
    for p in racers:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert loser.strip().count("\n") == 0 and "already exists" in loser and "Traceback" not in loser
    assert _size(out) == (TOY_SCALE * W, TOY_SCALE * H)


def test_closed_stdout_is_quiet_and_the_work_is_done(photo_dir: Path, toy_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "piped.png"
    command = [*script("edgesr-run"), str(photo_dir / "t1.png"), "-o", str(out), "--model",
               str(toy_onnx), "--threads", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # `| head -0`: the reader is gone before the first line
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0 and stderr == "", stderr
    assert _size(out) == (TOY_SCALE * W, TOY_SCALE * H)


def test_interrupted_folder_run_resumes_without_touching_done_files(photo_dir: Path, toy_onnx: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "up"
    out.mkdir()
    (out / "t1.png").write_bytes(b"finished before the interruption")
    (out / ".t2.png.0badcafe.tmp").write_bytes(b"half")  # a temp file the kill left behind
    before = fingerprint([photo_dir, out / "t1.png"])
    result = _upscale(photo_dir, out, toy_onnx)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "1 upscaled, 1 skipped" in result.stdout
    assert fingerprint([photo_dir, out / "t1.png"]) == before
    assert _size(out / "t2.png") == (TOY_SCALE * W, TOY_SCALE * H)


# --------------------------------------------------------------------- caches


def test_cache_dir_that_is_a_file_or_read_only(photo_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    as_file = tmp_path / "cache_file"
    as_file.write_bytes(b"not a folder")
    args = (photo_dir / "t1.png", "-o", tmp_path / "o.png", "--model", "osffnet-tiny_x2")
    assert_refused(run("edgesr-run", *args, env={"EDGESR_CACHE_DIR": str(as_file)}), "edgesr-run",
                   "cache_file")
    locked = tmp_path / "locked_cache"
    locked.mkdir()
    with read_only(locked):
        assert_refused(run("edgesr-run", *args, env={"EDGESR_CACHE_DIR": str(locked)}), "edgesr-run",
                       "locked_cache")
    assert as_file.read_bytes() == b"not a folder" and not (tmp_path / "o.png").exists()
