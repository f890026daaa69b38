"""Image I/O of the runtime: reading real files of every supported mode."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from edgesr.errors import ImageError
from edgesr.runtime.image_write import write_image
from edgesr.runtime.imageio import (
    LoadedImage,
    read_image,
)

from battery_util import one_line
from imageio_util import H, W, photo_fixture, ramp_alpha_fixture, save_cv, unit8  # noqa: F401 (fixtures)


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
    msg = one_line(exc)
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
