"""Image I/O of the runtime on real files of every supported mode, and on broken ones."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageOps

from edgesr.errors import ImageError, OutputError
from edgesr.runtime import imageio
from edgesr.runtime.image_folders import list_images, mirror_output_path
from edgesr.runtime.image_write import check_output_path, write_image
from edgesr.runtime.imageio import (
    LoadedImage,
    nchw_from_rgb,
    read_image,
    rgb_from_nchw,
    upscale_alpha,
)

from oracles import bicubic_upscale

H, W = 48, 64  # small non-square crop: keeps the suite fast and catches H/W swaps


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo crop, uint8 H×W×3 RGB."""
    return np.ascontiguousarray(skimage.data.astronaut()[100 : 100 + H, 180 : 180 + W])


@pytest.fixture(scope="module")
def ramp_alpha() -> np.ndarray:
    return np.tile(np.linspace(0, 255, W).round().astype(np.uint8), (H, 1))


def unit8(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 255.0


def assert_one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def save_cv(path: Path, pixels: np.ndarray) -> Path:
    ok, buf = cv2.imencode(path.suffix, pixels)
    assert ok
    buf.tofile(str(path))
    return path


# ------------------------------------------------------------------------------ reading


@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp", ".webp"])
def test_rgb_8bit_lossless_formats_read_exactly(tmp_path, photo, ext):
    path = tmp_path / f"rgb{ext}"
    kwargs = {"lossless": True} if ext == ".webp" else {}
    Image.fromarray(photo).save(path, **kwargs)
    img = read_image(path)
    assert isinstance(img, LoadedImage)
    assert img.rgb.dtype == np.float32 and img.rgb.shape == (H, W, 3)
    assert (img.height, img.width) == (H, W)
    np.testing.assert_array_equal(img.rgb, unit8(photo))  # RGB order, not BGR
    assert img.alpha is None and not img.has_alpha
    assert img.bit_depth == 8 and not img.is_gray
    assert img.source_path == path


def test_jpeg_reads_close_to_source(tmp_path, photo):
    path = tmp_path / "photo.JPG"  # upper-case extension is fine
    Image.fromarray(photo).save(path, quality=95)
    img = read_image(path)
    assert img.bit_depth == 8 and not img.is_gray
    assert np.abs(img.rgb - unit8(photo)).mean() < 3 / 255
    # channel order: the red channel of the file is the red channel of the result
    assert np.corrcoef(img.rgb[..., 0].ravel(), photo[..., 0].ravel())[0, 1] > 0.99


def test_cmyk_jpeg_is_converted_to_rgb_by_opencv(tmp_path, photo):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(photo).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"  # really a CMYK JPEG on disk
    img = read_image(path)
    assert img.rgb.shape == (H, W, 3) and img.bit_depth == 8 and not img.is_gray
    assert np.abs(img.rgb - unit8(photo)).mean() < 4 / 255


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_rgb_16bit_preserved(tmp_path, photo, ext):
    rgb16 = photo.astype(np.uint16) * 257 + 3  # not a plain 8-bit value in 16 bits
    path = save_cv(tmp_path / f"rgb16{ext}", rgb16[..., ::-1])
    img = read_image(path)
    assert img.bit_depth == 16
    np.testing.assert_allclose(img.rgb, rgb16 / 65535.0, atol=1e-7)
    out = write_image(tmp_path / f"out16{ext}", rgb=img.rgb, bit_depth=16, is_gray=False)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back[..., ::-1], rgb16)


def test_gray_8bit_png_is_expanded_and_remembered(tmp_path, photo):
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    img = read_image(path)
    assert img.is_gray and img.bit_depth == 8 and img.alpha is None
    for ch in range(3):
        np.testing.assert_array_equal(img.rgb[..., ch], unit8(gray))
    out = write_image(tmp_path / "gray_out.png", rgb=img.rgb, bit_depth=8, is_gray=True)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.ndim == 2  # gray in -> gray out
    np.testing.assert_array_equal(back, gray)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_gray_16bit(tmp_path, photo, ext):
    gray16 = photo[..., 1].astype(np.uint16) * 257
    path = tmp_path / f"gray16{ext}"
    Image.fromarray(gray16).save(path)  # Pillow writes mode I;16
    img = read_image(path)
    assert img.is_gray and img.bit_depth == 16
    np.testing.assert_allclose(img.rgb[..., 2], gray16 / 65535.0, atol=1e-7)
    out = write_image(tmp_path / f"g16_out{ext}", rgb=img.rgb, bit_depth=16, is_gray=True)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.ndim == 2 and back.dtype == np.uint16
    np.testing.assert_array_equal(back, gray16)


def test_gray_jpeg_is_gray(tmp_path, photo):
    path = tmp_path / "gray.jpg"
    Image.fromarray(photo).convert("L").save(path)
    img = read_image(path)
    assert img.is_gray and np.array_equal(img.rgb[..., 0], img.rgb[..., 1])


def test_gray_alpha_png(tmp_path, photo, ramp_alpha):
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([gray, ramp_alpha]), "LA").save(path)
    img = read_image(path)
    assert img.is_gray and img.bit_depth == 8
    np.testing.assert_array_equal(img.rgb[..., 0], unit8(gray))
    np.testing.assert_array_equal(img.alpha, unit8(ramp_alpha))
    # OpenCV cannot encode 2 channels: written as RGBA with equal colour channels
    out = write_image(
        tmp_path / "la_out.png", rgb=img.rgb, alpha=img.alpha, bit_depth=8, is_gray=True
    )
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.shape == (H, W, 4)
    np.testing.assert_array_equal(back[..., 0], gray)
    np.testing.assert_array_equal(back[..., 2], gray)
    np.testing.assert_array_equal(back[..., 3], ramp_alpha)


@pytest.mark.parametrize("ext", [".png", ".tif", ".webp"])
def test_rgba_alpha_separate_and_round_trip(tmp_path, photo, ramp_alpha, ext):
    path = tmp_path / f"rgba{ext}"
    kwargs = {"lossless": True} if ext == ".webp" else {}
    Image.fromarray(np.dstack([photo, ramp_alpha]), "RGBA").save(path, **kwargs)
    img = read_image(path)
    assert not img.is_gray and img.alpha is not None and img.alpha.dtype == np.float32
    np.testing.assert_array_equal(img.alpha, unit8(ramp_alpha))
    if ext == ".png":
        np.testing.assert_array_equal(img.rgb, unit8(photo))
    else:  # straight colour; 8-bit TIFF went through premultiplication, WebP drops alpha=0 colour
        a = img.alpha[..., None]
        np.testing.assert_allclose(img.rgb * a, unit8(photo) * a, atol=0.5 / 255 + 1e-6)
        np.testing.assert_array_equal(img.rgb[ramp_alpha == 255], unit8(photo)[ramp_alpha == 255])
    out = write_image(
        tmp_path / f"out{ext}", rgb=img.rgb, alpha=img.alpha, bit_depth=8, is_gray=False
    )
    again = read_image(out)
    np.testing.assert_array_equal(again.alpha, img.alpha)
    with Image.open(out) as pillow:  # another reader sees the same alpha plane
        assert pillow.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(pillow)[..., 3], ramp_alpha)
    opaque = ramp_alpha > 0
    np.testing.assert_allclose(again.rgb[opaque], img.rgb[opaque], atol=0.5 / 255 + 1e-6)


def test_gray_alpha_tiff_alpha_loss_is_logged(tmp_path, photo, ramp_alpha, caplog):
    path = tmp_path / "la.tif"
    Image.fromarray(np.dstack([photo[..., 0], ramp_alpha]), "LA").save(path)
    with caplog.at_level(logging.WARNING, logger="edgesr.runtime.imageio"):
        img = read_image(path)
    assert img.is_gray and img.alpha is None  # OpenCV's TIFF decoder drops it
    assert "drops the alpha" in caplog.text


def test_content_decides_decoder(tmp_path, photo):
    path = tmp_path / "really_a_png.jpg"
    Image.fromarray(photo).save(path, format="PNG")
    np.testing.assert_array_equal(read_image(path).rgb, unit8(photo))


def test_palette_png_expanded_by_opencv(tmp_path, photo):
    path = tmp_path / "palette.png"
    pal = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    pal.save(path)
    img = read_image(path)
    assert not img.is_gray and img.alpha is None and img.bit_depth == 8
    np.testing.assert_array_equal(img.rgb, unit8(np.asarray(pal.convert("RGB"))))


def test_palette_png_with_transparency_gives_alpha(tmp_path, photo):
    path = tmp_path / "palette_t.png"
    pal = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    pal.save(path, transparency=0)
    img = read_image(path)
    expected = np.asarray(Image.open(path).convert("RGBA"))
    assert img.alpha is not None
    np.testing.assert_array_equal(img.alpha, unit8(expected[..., 3]))
    assert (img.alpha == 0).any() and (img.alpha == 1).any()


def test_float_tiff_in_unit_range_is_accepted(tmp_path, photo):
    values = photo[..., 0].astype(np.float32) / 255.0
    path = tmp_path / "float.tif"
    Image.fromarray(values, "F").save(path)
    img = read_image(path)
    assert img.is_gray and img.bit_depth == 16  # written back as 16-bit
    np.testing.assert_allclose(img.rgb[..., 0], values, atol=1e-7)


def test_float_tiff_out_of_range_is_refused(tmp_path, photo):
    path = save_cv(tmp_path / "hdr.tiff", photo.astype(np.float32) / 255.0 * 4.0)
    with pytest.raises(ImageError) as exc:
        read_image(path)
    msg = assert_one_line(exc)
    assert "[0, 1]" in msg and "16-bit" in msg


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_like_viewers_jpeg(tmp_path, photo, orientation):
    path = tmp_path / f"o{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(photo).save(path, exif=exif.tobytes(), quality=100)
    img = read_image(path)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert img.rgb.shape == expected.shape
    assert np.abs(img.rgb - unit8(expected)).max() <= 2 / 255  # two libjpeg builds


# What each EXIF orientation asks a viewer to do (the spec's table, written out by hand).
VIEWER_TRANSFORMS = {
    3: lambda a: a[::-1, ::-1],  # rotate 180
    5: lambda a: a.swapaxes(0, 1),  # transpose
    6: lambda a: np.rot90(a, k=-1),  # rotate 90 clockwise
    8: lambda a: np.rot90(a, k=1),  # rotate 90 counter-clockwise
}


@pytest.mark.parametrize(
    ("ext", "orientation"), [(".png", 6), (".webp", 8), (".tif", 5), (".tif", 3), (".tif", 6)]
)
def test_exif_orientation_other_formats(tmp_path, photo, ext, orientation):
    # an alpha that varies along both axes, so every flip and rotation is told apart
    alpha = (np.add.outer(np.arange(H) * 5, np.arange(W) * 2) % 200 + 50).astype(np.uint8)
    rgba = np.dstack([photo, alpha])
    path = tmp_path / f"o{orientation}{ext}"
    im = Image.fromarray(rgba, "RGBA")
    if ext == ".tif":
        im.save(path, tiffinfo={274: orientation})
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(path, exif=exif.tobytes(), **({"lossless": True} if ext == ".webp" else {}))
    img = read_image(path)
    expected = VIEWER_TRANSFORMS[orientation](unit8(rgba))
    np.testing.assert_array_equal(img.alpha, expected[..., 3])  # alpha rotates too
    a = img.alpha[..., None]
    np.testing.assert_allclose(img.rgb * a, expected[..., :3] * a, atol=0.5 / 255 + 1e-6)


@pytest.mark.parametrize("extrasamples", ["unassalpha", "assocalpha"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_rgba_tiff_alpha_kinds_give_straight_colour(
    tmp_path, photo, ramp_alpha, extrasamples, dtype
):
    tifffile = pytest.importorskip("tifffile")
    top = np.iinfo(dtype).max
    colour = photo.astype(np.float64) / 255.0
    alpha = np.maximum(ramp_alpha, 128).astype(np.float64) / 255.0
    stored = colour * alpha[..., None] if extrasamples == "assocalpha" else colour
    rgba = np.rint(np.dstack([stored, alpha]) * top).astype(dtype)
    path = tmp_path / "alpha.tif"
    tifffile.imwrite(path, rgba, photometric="rgb", extrasamples=[extrasamples])
    img = read_image(path)
    assert img.bit_depth == (8 if dtype == np.uint8 else 16)
    np.testing.assert_allclose(img.alpha, alpha, atol=0.5 / top + 1e-6)
    np.testing.assert_allclose(img.rgb, colour, atol=2.5 / 255)  # straight, not premultiplied


def test_non_ascii_path_read_and_write(tmp_path, photo):
    folder = tmp_path / "фото 写真"
    folder.mkdir()
    path = folder / "астронавт.png"
    Image.fromarray(photo).save(path)
    img = read_image(path)
    np.testing.assert_array_equal(img.rgb, unit8(photo))  # read: the pixels Pillow wrote
    out = write_image(folder / "выход.png", rgb=img.rgb, bit_depth=8, is_gray=False)
    assert out.parent == folder and out.name == "выход.png"
    with Image.open(out) as back:  # written: Pillow reads the same pixels back
        assert back.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(back), photo)


# ---------------------------------------------------------------------- broken inputs


def test_missing_path(tmp_path):
    with pytest.raises(ImageError) as exc:
        read_image(tmp_path / "nope.png")
    assert "does not exist" in assert_one_line(exc)


def test_directory(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError) as exc:
        read_image(tmp_path / "dir.png")
    assert "folder" in assert_one_line(exc)


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError) as exc:
        read_image(tmp_path / "empty.png")
    assert "empty" in assert_one_line(exc)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif", ".bmp"])
def test_truncated_file(tmp_path, photo, ext):
    whole = tmp_path / f"whole{ext}"
    Image.fromarray(photo).save(whole)
    cut = tmp_path / f"cut{ext}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as exc:
        read_image(cut)
    msg = assert_one_line(exc)
    assert "truncated" in msg and str(cut) in msg


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageError) as exc:
        read_image(path)
    assert "not a PNG, JPEG, WebP, TIFF or BMP" in assert_one_line(exc)


def test_corrupt_png_body(tmp_path, photo):
    path = tmp_path / "corrupt.png"
    Image.fromarray(photo).save(path)
    data = bytearray(path.read_bytes())
    data[60:400] = bytes(340)  # zero the compressed data, keep the structure
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError) as exc:
        read_image(path)
    assert "could not decode" in assert_one_line(exc)


def test_unsupported_extension(tmp_path, photo):
    path = tmp_path / "anim.gif"
    Image.fromarray(photo).save(path)
    with pytest.raises(ImageError) as exc:
        read_image(path)
    msg = assert_one_line(exc)
    assert "'.gif'" in msg and ".png" in msg and ".webp" in msg


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1)])
def test_too_small(tmp_path, size):
    path = tmp_path / "tiny.png"
    Image.fromarray(np.zeros(size + (3,), np.uint8)).save(path)
    with pytest.raises(ImageError) as exc:
        read_image(path)
    assert "minimum is 2x2" in assert_one_line(exc)
    path2 = tmp_path / "two.png"
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(path2)
    assert read_image(path2).rgb.shape == (2, 2, 3)


# ------------------------------------------------------------------------------ writing


def test_write_is_atomic_and_replaces(tmp_path, photo):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(OutputError) as exc:  # no-clobber unless asked
        write_image(target, rgb=unit8(photo), bit_depth=8, is_gray=False)
    assert "already exists" in assert_one_line(exc) and target.read_bytes() == b"old"
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
    assert "no space left" in assert_one_line(exc)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.png"]


def test_write_unknown_extension(tmp_path, photo):
    with pytest.raises(ImageError) as exc:
        write_image(tmp_path / "out.gif", rgb=unit8(photo), bit_depth=8, is_gray=False)
    msg = assert_one_line(exc)
    assert ".png .jpg .jpeg .webp .tif .tiff .bmp" in msg


def test_write_missing_folder(tmp_path, photo):
    with pytest.raises(OutputError) as exc:
        write_image(tmp_path / "no" / "out.png", rgb=unit8(photo), bit_depth=8, is_gray=False)
    assert "does not exist" in assert_one_line(exc)


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
    assert needle in assert_one_line(exc)
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
        assert "never overwrites an input" in assert_one_line(exc)
    # write_image refuses too when told the inputs
    with pytest.raises(OutputError):
        write_image(link, rgb=unit8(photo), bit_depth=8, is_gray=False, inputs=[src], overwrite=True)
    assert Image.open(src).size == (W, H)


def test_check_output_path_existing_and_overwrite(tmp_path):
    existing = tmp_path / "out.png"
    existing.write_bytes(b"x")
    with pytest.raises(OutputError) as exc:
        check_output_path(existing, inputs=[tmp_path / "in.png"], overwrite=False)
    assert "already exists" in assert_one_line(exc)
    assert check_output_path(existing, inputs=[tmp_path / "in.png"], overwrite=True) == existing
    fresh = tmp_path / "fresh.png"
    assert check_output_path(fresh, inputs=[existing], overwrite=False) == fresh
    with pytest.raises(ImageError) as exc:
        check_output_path(tmp_path, inputs=[], overwrite=True)
    assert "folder" in assert_one_line(exc)


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
    assert "does not exist" in assert_one_line(exc)


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
