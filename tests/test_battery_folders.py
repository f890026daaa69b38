"""Folder mode and the default output folder through the real ``edgesr-run`` (issue 16).

- Failed images of a folder run: one stderr line for all of them (how many, their names, the
  first reason), exit 1, the good ones written; ``-v`` gives each one's reason.
- An unreadable subfolder is refused before any work (run as ``nobody``: root reads every
  folder), not skipped silently.
- A refused run without ``-o`` leaves no empty ``results/`` behind; a successful one writes
  there.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from battery_util import assert_refused, fingerprint, run
from conftest import TOY_SCALE


def _bad_folder(root: Path) -> Path:
    root.mkdir()
    Image.new("RGB", (24, 20), (90, 140, 30)).save(root / "good.png")
    (root / "empty.png").write_bytes(b"")
    (root / "sub").mkdir()
    (root / "sub" / "text.jpg").write_text("hello")
    Image.new("RGB", (1, 1), (9, 99, 199)).save(root / "sub" / "dot.png")
    return root


def test_failed_images_of_a_folder_are_one_line(toy_onnx: Path, tmp_path: Path) -> None:
    src = _bad_folder(tmp_path / "in")
    before = fingerprint([src])
    result = run("edgesr-run", src, "-o", tmp_path / "out", "--model", toy_onnx)
    line = assert_refused(result, "edgesr-run", "3 of 4 images failed (", code=1)
    assert all(name in line for name in ("empty.png", "sub/text.jpg", "sub/dot.png")), line
    assert "the first: " in line and "-v lists each one's reason" in line
    with Image.open(tmp_path / "out" / "good.png") as image:
        assert image.size == (24 * TOY_SCALE, 20 * TOY_SCALE)
    assert fingerprint([src]) == before

    verbose = run("edgesr-run", src, "-o", tmp_path / "out2", "--model", toy_onnx, "-v")
    reasons = [line for line in verbose.stderr.splitlines() if " failed: " in line]
    assert len(reasons) == 3, verbose.stderr
    assert any("empty" in r for r in reasons) and any("minimum" in r for r in reasons)


def test_an_unreadable_subfolder_is_refused_not_skipped(toy_onnx: Path) -> None:
    from trust_util import own_folder_of, run_as, second_user, shared_scratch

    other = second_user()
    for scratch in shared_scratch():
        src = scratch / "in"
        (src / "closed").mkdir(parents=True)
        Image.new("RGB", (24, 20), (90, 140, 30)).save(src / "a.png")
        Image.new("RGB", (24, 20), (20, 80, 140)).save(src / "closed" / "b.png")
        src.chmod(0o755)
        (src / "a.png").chmod(0o644)
        (src / "closed").chmod(0o700)
        model = scratch / "toy.onnx"
        model.write_bytes(toy_onnx.read_bytes())
        model.chmod(0o644)
        home = own_folder_of(other, scratch / "home")
        result = run_as(other, "edgesr-run", src, "-o", home / "out", "--model", model,
                        env={"HOME": str(home), "EDGESR_CACHE_DIR": str(home / "cache")}, view=scratch / "view")
        assert_refused(result, "edgesr-run", f"{src / 'closed'}", "Permission denied", "left out")
        assert not (home / "out").exists()


def test_a_refused_run_leaves_no_results_folder(toy_onnx: Path, tmp_path: Path) -> None:
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    refused = run("edgesr-run", "junk.png", "--model", toy_onnx, cwd=tmp_path)
    assert_refused(refused, "edgesr-run", "not a PNG")
    assert not (tmp_path / "results").exists()

    _bad_folder(tmp_path / "photos")
    (tmp_path / "photos" / "good.png").unlink()  # every image fails: nothing written
    all_failed = run("edgesr-run", "photos", "--model", toy_onnx, cwd=tmp_path)
    assert_refused(all_failed, "edgesr-run", "3 of 3 images failed", code=1)
    assert not (tmp_path / "results").exists()

    Image.new("RGB", (24, 20), (90, 140, 30)).save(tmp_path / "photo.png")
    done = run("edgesr-run", "photo.png", "--model", toy_onnx, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["photo_out.png"]
