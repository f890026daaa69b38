"""Hostile and unusual inputs through the real ``edgesr-run`` (issue 9, battery part 1).

Every refused case: exit 2, one stderr line, no traceback, no output, input bytes unchanged.
Every accepted case: exit 0, empty stderr, an output twice the size Pillow reports for the
input (after EXIF orientation, by ``ImageOps.exif_transpose``), input bytes unchanged.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from battery_util import assert_ok, assert_refused, fingerprint, run
from conftest import TOY_SCALE

H, W = 32, 40


def _rgb() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(skdata.astronaut()[100 : 100 + H, 180 : 180 + W])


def _png_bytes(image: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_declaring(width: int, height: int, rows: int) -> bytes:
    """A PNG whose IHDR says width x height but whose pixel data holds only ``rows`` rows."""
    raw = (b"\x00" + b"\x80" * (3 * width)) * rows
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


def _frames(path: Path, fmt: str) -> Path:
    first = Image.fromarray(_rgb())
    first.save(path, format=fmt, save_all=True, append_images=[ImageOps.invert(first)],
               **({"lossless": True} if fmt == "WEBP" else {}))
    return path


def _corrupt_idat(path: Path) -> Path:
    """A PNG with its compressed pixel stream overwritten (libpng reports it on stderr)."""
    data = bytearray(_png_bytes(Image.fromarray(_rgb()), compress_level=0))
    start = data.index(b"IDAT") + 4
    data[start + 40 : start + 400] = bytes(range(256)) + bytes(104)
    path.write_bytes(bytes(data))
    return path


def _write(data: bytes) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        path.write_bytes(data)
        return path
    return make


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _dev_zero(path: Path) -> Path:
    path.symlink_to("/dev/zero")
    return path


REFUSED: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    # name: (file name, maker, text the one error line must hold)
    "empty": ("empty.png", _write(b""), "empty"),
    "truncated": ("cut.png", lambda p: _write(_png_bytes(Image.fromarray(_rgb()))[:300])(p), "truncated"),
    "not an image": ("notes.png", _write(b"hello, not a picture\n" * 4), "not a PNG"),
    "lying header (too few rows)": ("liar.png", _write(_png_declaring(W, H, rows=3)), "could not decode"),
    "corrupt pixel data": ("corrupt.png", _corrupt_idat, "could not decode"),
    "decompression bomb 20000x20000": ("bomb.png", _write(_png_declaring(20000, 20000, rows=1)),
                                       "--max-pixels"),
    "symlink to /dev/zero": ("zero.png", _dev_zero, "character device"),
    "FIFO": ("fifo.png", _fifo, "FIFO"),
    "animated PNG": ("anim.png", lambda p: _frames(p, "PNG"), "2 frames"),
    "animated WebP": ("anim.webp", lambda p: _frames(p, "WEBP"), "2 frames"),
    "multi-page TIFF": ("pages.tiff", lambda p: _frames(p, "TIFF"), "2 frames"),
    "1x1 pixel": ("dot.png", lambda p: _write(_png_bytes(Image.new("RGB", (1, 1), (9, 99, 199))))(p),
                  "minimum"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_input_is_one_line_and_nothing_changes(case: str, toy_onnx: Path, tmp_path: Path) -> None:
    name, make, needle = REFUSED[case]
    inputs = tmp_path / "in"
    inputs.mkdir()
    src = make(inputs / name)
    before = fingerprint([inputs])
    out = tmp_path / "out.png"
    result = run("edgesr-run", src, "-o", out, "--model", toy_onnx, "--threads", "1", timeout=60)
    assert_refused(result, "edgesr-run", needle)
    assert not out.exists() and fingerprint([inputs]) == before


def _exif_rotated_jpeg(path: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    Image.fromarray(_rgb()).save(path, format="JPEG", exif=exif.tobytes(), quality=95)
    return path


def _save(mode_maker: Callable[[Image.Image], Image.Image], fmt: str = "PNG") -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        mode_maker(Image.fromarray(_rgb())).save(path, format=fmt)
        return path
    return make


def _symlink_to_image(path: Path) -> Path:
    target = path.with_name("real.png")
    Image.fromarray(_rgb()).save(target)
    path.symlink_to(target.name)
    return path


ACCEPTED: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "8-bit RGB": ("rgb.png", _save(lambda im: im)),
    "16-bit gray": ("deep.png", _save(lambda im: Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257))),
    "palette": ("palette.png", _save(lambda im: im.convert("P", palette=Image.Palette.ADAPTIVE))),
    "RGBA": ("alpha.png", _save(lambda im: im.convert("RGBA"))),
    "CMYK JPEG": ("cmyk.jpg", _save(lambda im: im.convert("CMYK"), "JPEG")),
    "EXIF orientation 6": ("rotated.jpg", _exif_rotated_jpeg),
    "unicode path": ("фото 写真 é.png", _save(lambda im: im)),
    "symlink to an image": ("link.png", _symlink_to_image),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_unusual_input_is_upscaled(case: str, toy_onnx: Path, tmp_path: Path) -> None:
    name, make = ACCEPTED[case]
    inputs = tmp_path / "in"
    inputs.mkdir()
    src = make(inputs / name)
    before = fingerprint([inputs])
    with Image.open(src) as im:
        width, height = ImageOps.exif_transpose(im).size
    out = tmp_path / "out.png"
    assert_ok(run("edgesr-run", src, "-o", out, "--model", toy_onnx, "--threads", "1"))
    with Image.open(out) as result:
        assert result.size == (TOY_SCALE * width, TOY_SCALE * height)
    assert fingerprint([inputs]) == before


def test_max_pixels_is_the_limit_and_is_named(toy_onnx: Path, tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    Image.fromarray(_rgb()).save(src)
    refused = run("edgesr-run", src, "-o", tmp_path / "a.png", "--model", toy_onnx,
                  "--max-pixels", str(W * H - 1))
    assert_refused(refused, "edgesr-run", f"{W}x{H}", f"--max-pixels {W * H - 1:,}")
    assert_ok(run("edgesr-run", src, "-o", tmp_path / "b.png", "--model", toy_onnx,
                  "--max-pixels", str(W * H)))
