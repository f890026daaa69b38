"""Image I/O of the runtime: broken inputs, alpha and layout helpers, folders, and no torch.
Reading is in test_imageio_read.py, writing in test_imageio_write.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from edgesr.errors import ImageError
from edgesr.runtime.image_folders import list_images, mirror_output_path
from edgesr.runtime.imageio import (
    nchw_from_rgb,
    read_image,
    rgb_from_nchw,
    upscale_alpha,
)

from battery_util import one_line
from imageio_util import H, W, photo_fixture, unit8  # noqa: F401 (fixtures)
from oracles import bicubic_upscale


# ---------------------------------------------------------------------- broken inputs


def test_missing_path(tmp_path):
    with pytest.raises(ImageError) as exc:
        read_image(tmp_path / "nope.png")
    assert "does not exist" in one_line(exc)


def test_directory(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError) as exc:
        read_image(tmp_path / "dir.png")
    assert "folder" in one_line(exc)


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError) as exc:
        read_image(tmp_path / "empty.png")
    assert "empty" in one_line(exc)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif", ".bmp"])
def test_truncated_file(tmp_path, photo, ext):
    whole = tmp_path / f"whole{ext}"
    Image.fromarray(photo).save(whole)
    cut = tmp_path / f"cut{ext}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as exc:
        read_image(cut)
    msg = one_line(exc)
    assert "truncated" in msg and str(cut) in msg


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageError) as exc:
        read_image(path)
    assert "not a PNG, JPEG, WebP, TIFF or BMP" in one_line(exc)


def test_corrupt_png_body(tmp_path, photo):
    path = tmp_path / "corrupt.png"
    Image.fromarray(photo).save(path)
    data = bytearray(path.read_bytes())
    data[60:400] = bytes(340)  # zero the compressed data, keep the structure
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError) as exc:
        read_image(path)
    assert "could not decode" in one_line(exc)


def test_unsupported_extension(tmp_path, photo):
    path = tmp_path / "anim.gif"
    Image.fromarray(photo).save(path)
    with pytest.raises(ImageError) as exc:
        read_image(path)
    msg = one_line(exc)
    assert "'.gif'" in msg and ".png" in msg and ".webp" in msg


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1)])
def test_too_small(tmp_path, size):
    path = tmp_path / "tiny.png"
    Image.fromarray(np.zeros(size + (3,), np.uint8)).save(path)
    with pytest.raises(ImageError) as exc:
        read_image(path)
    assert "minimum is 2x2" in one_line(exc)
    path2 = tmp_path / "two.png"
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(path2)
    assert read_image(path2).rgb.shape == (2, 2, 3)


# --------------------------------------------------------------------- alpha, layout


def test_upscale_alpha():
    alpha = np.zeros((6, 7), np.float32)
    alpha[2:4, 2:5] = 1.0
    up = upscale_alpha(alpha, scale=3)
    assert up.shape == (18, 21) and up.dtype == np.float32
    # Oracle: Keys' bicubic (a = -0.75, half-pixel, edges replicated) written in tests/oracles.py.
    unclipped = bicubic_upscale(alpha, 3)
    assert unclipped.min() < -0.05 and unclipped.max() > 1.05  # the hard edge overshoots ...
    np.testing.assert_allclose(up, np.clip(unclipped, 0.0, 1.0), atol=1e-6)  # ... and is clipped
    np.testing.assert_array_equal(upscale_alpha(np.ones((5, 4), np.float32), scale=4), 1.0)
    with pytest.raises(ImageError):
        upscale_alpha(alpha, scale=0)
    with pytest.raises(ImageError):
        upscale_alpha(alpha[None], scale=2)


def test_layout_helpers(photo):
    rgb = unit8(photo)
    lr = nchw_from_rgb(rgb)
    assert lr.shape == (1, 3, H, W) and lr.flags.c_contiguous and lr.dtype == np.float32
    # by hand: channel c of pixel (y, x) lands at [0, c, y, x]
    assert [lr[0, c, 5, 7] for c in range(3)] == list(rgb[5, 7])
    np.testing.assert_array_equal(lr[0], np.moveaxis(rgb, 2, 0))
    np.testing.assert_array_equal(rgb_from_nchw(lr), rgb)


# ------------------------------------------------------------------------------ folders


def test_list_images_and_mirror(tmp_path, photo):
    root = tmp_path / "in"
    (root / "b" / "deep").mkdir(parents=True)
    (root / "a").mkdir()
    (root / ".hidden").mkdir()
    for rel in ["z.png", "a/x.JPG", "b/deep/y.webp", "b/c.tiff", ".hidden/h.png", "a/.tmp.png"]:
        Image.fromarray(photo).save(root / rel, format="PNG")
    (root / "a" / "notes.txt").write_text("x")
    (root / "b" / "anim.gif").write_bytes(b"GIF89a")
    found = list_images(root)
    assert [p.relative_to(root).as_posix() for p in found] == [
        "a/x.JPG", "b/c.tiff", "b/deep/y.webp", "z.png",
    ]
    out = mirror_output_path(found[2], input_root=root, output_root=tmp_path / "out", suffix="_x4")
    assert out == tmp_path / "out" / "b" / "deep" / "y_x4.webp"
    out_png = mirror_output_path(
        found[0], input_root=root, output_root=tmp_path / "out", suffix="", extension="png"
    )
    assert out_png == tmp_path / "out" / "a" / "x.png"
    with pytest.raises(ImageError):
        mirror_output_path(
            tmp_path / "elsewhere.png", input_root=root, output_root=tmp_path, suffix=""
        )
    with pytest.raises(ImageError):
        mirror_output_path(found[0], input_root=root, output_root=tmp_path, suffix="a/b")
    with pytest.raises(ImageError) as exc:
        list_images(tmp_path / "missing")
    assert "does not exist" in one_line(exc)


# ----------------------------------------------------------------------- no torch


def test_runtime_imports_without_torch(tmp_path):
    """The fake torch records every import attempt (even ones a library catches) and fails."""
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    marker = tmp_path / "torch_was_imported"
    (fake / "__init__.py").write_text(
        "import os, pathlib\n"
        "pathlib.Path(os.environ['EDGESR_TORCH_MARKER']).write_text('imported')\n"
        "raise ImportError('torch is not allowed in edgesr.runtime')\n"
    )
    code = textwrap.dedent(
        """
        import os, pathlib, sys
        import edgesr.runtime.imageio, edgesr.runtime.tiling
        assert not pathlib.Path(os.environ["EDGESR_TORCH_MARKER"]).exists(), "torch was imported"
        try:
            import torch
        except ImportError:
            pass
        else:
            raise SystemExit("the fake torch package was not picked up")
        assert pathlib.Path(os.environ["EDGESR_TORCH_MARKER"]).exists()
        print("ok")
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(tmp_path / "fake"), os.environ.get("PYTHONPATH")])
        ),
        "EDGESR_TORCH_MARKER": str(marker),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"
