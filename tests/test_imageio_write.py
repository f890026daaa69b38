"""Image I/O of the runtime: writing (atomic, never clobbering) and the output-path guards."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from edgesr.errors import ImageError, OutputError
from edgesr.runtime import imageio
from edgesr.runtime.image_write import check_output_path, write_image
from edgesr.runtime.imageio import (
    read_image,
)

from battery_util import one_line
from imageio_util import H, W, photo_fixture, ramp_alpha_fixture, unit8  # noqa: F401 (fixtures)


# ------------------------------------------------------------------------------ writing


def test_write_is_atomic_and_replaces(tmp_path, photo):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(OutputError) as exc:  # no-clobber unless asked
        write_image(target, rgb=unit8(photo), bit_depth=8, is_gray=False)
    assert "already exists" in one_line(exc) and target.read_bytes() == b"old"
    write_image(target, rgb=unit8(photo), bit_depth=8, is_gray=False, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["out.png"]  # no temp file left
    with Image.open(target) as back:
        np.testing.assert_array_equal(np.asarray(back), photo)


def test_failed_write_keeps_old_file_and_no_temp(tmp_path, photo, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imageio.os, "replace", broken_replace)
    with pytest.raises(OutputError) as exc:
        write_image(target, rgb=unit8(photo), bit_depth=8, is_gray=False, overwrite=True)
    assert "no space left" in one_line(exc)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.png"]


def test_write_unknown_extension(tmp_path, photo):
    with pytest.raises(ImageError) as exc:
        write_image(tmp_path / "out.gif", rgb=unit8(photo), bit_depth=8, is_gray=False)
    msg = one_line(exc)
    assert ".png .jpg .jpeg .webp .tif .tiff .bmp" in msg


def test_write_missing_folder(tmp_path, photo):
    with pytest.raises(OutputError) as exc:
        write_image(tmp_path / "no" / "out.png", rgb=unit8(photo), bit_depth=8, is_gray=False)
    assert "does not exist" in one_line(exc)


@pytest.mark.parametrize("ext", [".jpg", ".webp", ".bmp"])
def test_16bit_to_8bit_format_warns(tmp_path, photo, caplog, ext):
    rgb = unit8(photo)
    with caplog.at_level(logging.WARNING, logger="edgesr.runtime.imageio"):
        out = write_image(tmp_path / f"o{ext}", rgb=rgb, bit_depth=16, is_gray=False)
    assert "8 bits" in caplog.text
    back = read_image(out)
    assert back.bit_depth == 8
    if ext != ".jpg":
        np.testing.assert_array_equal(back.rgb, rgb)  # WebP is written lossless
    with Image.open(out) as pillow:  # Pillow agrees: 8-bit RGB, the photo's pixels
        assert pillow.mode == "RGB"
        if ext != ".jpg":
            np.testing.assert_array_equal(np.asarray(pillow), photo)


def test_alpha_to_jpeg_warns_and_drops(tmp_path, photo, ramp_alpha, caplog):
    with caplog.at_level(logging.WARNING, logger="edgesr.runtime.imageio"):
        out = write_image(
            tmp_path / "o.jpg",
            rgb=unit8(photo),
            alpha=unit8(ramp_alpha),
            bit_depth=8,
            is_gray=False,
        )
    assert "alpha is dropped" in caplog.text
    assert read_image(out).alpha is None
    with Image.open(out) as back:  # Pillow: a plain 3-channel JPEG of the photo
        assert back.format == "JPEG" and back.mode == "RGB"
        assert np.abs(np.asarray(back).astype(int) - photo).mean() < 3


def test_bmp_alpha_round_trip(tmp_path, photo, ramp_alpha):
    out = write_image(
        tmp_path / "o.bmp", rgb=unit8(photo), alpha=unit8(ramp_alpha), bit_depth=8, is_gray=False
    )
    np.testing.assert_array_equal(read_image(out).alpha, unit8(ramp_alpha))
    with Image.open(out) as back:  # Pillow, not our reader: a 32-bit BMP with the same pixels
        assert back.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(back), np.dstack([photo, ramp_alpha]))


def test_gray_output_uses_opencv_luma_weights(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.random((8, 10, 3), dtype=np.float32)
    out = write_image(tmp_path / "g.png", rgb=rgb, bit_depth=16, is_gray=True)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED).astype(np.float64) / 65535
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(back, luma, atol=1.5 / 65535)


def test_write_clips_and_rounds(tmp_path):
    rgb = np.full((2, 3, 3), 0.5, np.float32)
    rgb[0, 0] = [-0.2, 1.3, 0.5]
    out = write_image(tmp_path / "c.png", rgb=rgb, bit_depth=8, is_gray=False)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert back[0, 0].tolist() == [0, 255, 128]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"rgb": np.full((4, 4, 3), np.nan, np.float32)}, "NaN"),
        ({"rgb": np.zeros((3, 4, 4), np.float32)}, "shape"),
        ({"rgb": np.zeros((4, 4, 3), np.uint8)}, "dtype"),
        (
            {"rgb": np.zeros((4, 4, 3), np.float32), "alpha": np.zeros((2, 2), np.float32)},
            "upscale_alpha",
        ),
        ({"rgb": np.zeros((4, 4, 3), np.float32), "bit_depth": 12}, "8 or 16"),
    ],
)
def test_write_refuses_bad_arrays(tmp_path, kwargs, needle):
    args = {"bit_depth": 8, "is_gray": False, **kwargs}
    with pytest.raises(ImageError) as exc:
        write_image(tmp_path / "x.png", **args)
    assert needle in one_line(exc)
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------- output guards


def test_check_output_path_refuses_inputs(tmp_path, photo, monkeypatch):
    src = tmp_path / "in.png"
    Image.fromarray(photo).save(src)
    monkeypatch.chdir(tmp_path)
    link = tmp_path / "link.png"
    link.symlink_to(src)
    hard = tmp_path / "hard.png"
    os.link(src, hard)
    (tmp_path / "sub").mkdir()
    for output in (src, Path("./in.png"), tmp_path / "sub" / ".." / "in.png", link, hard):
        with pytest.raises(OutputError) as exc:
            check_output_path(output, inputs=[src], overwrite=True)
        assert "never overwrites an input" in one_line(exc)
    # write_image refuses too when told the inputs
    with pytest.raises(OutputError):
        write_image(link, rgb=unit8(photo), bit_depth=8, is_gray=False, inputs=[src], overwrite=True)
    assert Image.open(src).size == (W, H)


def test_check_output_path_existing_and_overwrite(tmp_path):
    existing = tmp_path / "out.png"
    existing.write_bytes(b"x")
    with pytest.raises(OutputError) as exc:
        check_output_path(existing, inputs=[tmp_path / "in.png"], overwrite=False)
    assert "already exists" in one_line(exc)
    assert check_output_path(existing, inputs=[tmp_path / "in.png"], overwrite=True) == existing
    fresh = tmp_path / "fresh.png"
    assert check_output_path(fresh, inputs=[existing], overwrite=False) == fresh
    with pytest.raises(ImageError) as exc:
        check_output_path(tmp_path, inputs=[], overwrite=True)
    assert "folder" in one_line(exc)
