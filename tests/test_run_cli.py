"""``edgesr-run`` end to end: the real console script in a subprocess, real ONNX Runtime, real
image files of every mode, and folders. Bad input is in test_run_cli_refusals.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from oracles import bicubic_upscale
from run_cli_util import (  # noqa: F401 (fixtures)
    H,
    SCALE,
    W,
    assert_refused,
    models_fixture,
    photo_fixture,
    read_raw,
    run_cli,
    save_rgb,
)


# ------------------------------------------------------------------------ image modes


def test_rgb_8_bit_png(models, photo, tmp_path: Path) -> None:
    src = save_rgb(tmp_path / "in.png", photo)
    result = run_cli(src, "-o", tmp_path / "out.png", "--model", models["sr"])
    assert result.returncode == 0, result.stderr
    assert "engine: ort on CPUExecutionProvider (fp32" in result.stdout
    assert f"{W}x{H} -> {W * SCALE}x{H * SCALE}" in result.stdout and " ms" in result.stdout
    out = read_raw(tmp_path / "out.png")
    assert out.dtype == np.uint8 and out.shape == (H * SCALE, W * SCALE, 3)
    # the model is nearest-neighbour plus a small mix: the output looks like the input
    near = cv2.resize(photo, (W * SCALE, H * SCALE), interpolation=cv2.INTER_NEAREST)[:, :, ::-1]
    assert np.abs(out.astype(int) - near).mean() < 8
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_16_bit_png_stays_16_bit(models, photo, tmp_path: Path) -> None:
    rgb16 = photo.astype(np.uint16) * 257 + np.uint16(123)
    src = save_rgb(tmp_path / "in16.png", rgb16)
    assert run_cli(src, "-o", tmp_path / "out16.png", "--model", models["sr"]).returncode == 0
    out = read_raw(tmp_path / "out16.png")
    assert out.dtype == np.uint16 and out.shape == (H * SCALE, W * SCALE, 3)
    assert np.any(out % 257 != 0)  # real 16-bit values, not 8-bit ones widened


def test_gray_in_gray_out(models, photo, tmp_path: Path) -> None:
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    src = tmp_path / "gray.png"
    assert cv2.imwrite(str(src), gray)
    assert run_cli(src, "-o", tmp_path / "gray_x2.png", "--model", models["sr"]).returncode == 0
    out = read_raw(tmp_path / "gray_x2.png")
    assert out.ndim == 2 and out.shape == (H * SCALE, W * SCALE)


def test_rgba_alpha_is_upscaled_separately(models, photo, tmp_path: Path) -> None:
    # A hard-edged alpha (an opaque block on a ramp) where cubic, linear and nearest differ.
    alpha = np.tile(np.linspace(0, 255, W).round().astype(np.uint8), (H, 1))
    alpha[10:30, 20:44] = 255
    alpha[16:22, 26:34] = 0
    src = save_rgb(tmp_path / "rgba.png", np.dstack([photo, alpha]))
    assert run_cli(src, "-o", tmp_path / "rgba_x2.png", "--model", models["sr"]).returncode == 0
    out = read_raw(tmp_path / "rgba_x2.png")
    assert out.shape == (H * SCALE, W * SCALE, 4)
    # Oracle: Keys' bicubic written in tests/oracles.py, clipped to [0, 1], 8-bit rounding.
    expected = np.clip(bicubic_upscale(alpha / 255.0, SCALE), 0.0, 1.0) * 255.0
    assert np.abs(out[:, :, 3] - expected).max() <= 0.5 + 1e-6
    # The check can fail: a bilinear alpha is several levels away at the block's edges.
    bilinear = cv2.resize(alpha, (W * SCALE, H * SCALE), interpolation=cv2.INTER_LINEAR)
    assert np.abs(bilinear - expected).max() > 5


@pytest.mark.parametrize("mode", ["cmyk_jpeg", "palette_png"])
def test_cmyk_and_palette_images_are_converted(models, photo, tmp_path: Path, mode: str) -> None:
    if mode == "cmyk_jpeg":
        src = tmp_path / "cmyk.jpg"
        Image.fromarray(photo).convert("CMYK").save(src, "JPEG", quality=95)
    else:
        src = tmp_path / "palette.png"
        Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(src)
    result = run_cli(src, "-o", tmp_path / "out.png", "--model", models["sr"])
    assert result.returncode == 0, result.stderr
    out = read_raw(tmp_path / "out.png")
    assert out.shape == (H * SCALE, W * SCALE, 3)
    near = cv2.resize(photo, (W * SCALE, H * SCALE), interpolation=cv2.INTER_NEAREST)[:, :, ::-1]
    assert np.abs(out.astype(int) - near).mean() < 20  # right colours (not inverted CMYK)


def test_onnx_without_metadata_works_with_scale(models, photo, tmp_path: Path) -> None:
    src = save_rgb(tmp_path / "in.png", photo)
    refused = run_cli(src, "-o", tmp_path / "out.png", "--model", models["nometa"])
    assert_refused(refused, "no edgesr metadata", "--scale")
    assert not (tmp_path / "out.png").exists()
    result = run_cli(src, "-o", tmp_path / "out.png", "--model", models["nometa"], "--scale", SCALE)
    assert result.returncode == 0, result.stderr
    assert read_raw(tmp_path / "out.png").shape == (H * SCALE, W * SCALE, 3)


def test_tile_0_is_auto_and_tiles_an_image_too_large_for_the_budget(models, tmp_path: Path) -> None:
    # realesrgan-ncnn-vulkan's -t 0 = auto: the same plan as no --tile (whole image would not fit)
    big = np.ascontiguousarray(skimage.data.coffee()[:160, :240])  # 240x160 LR
    src = save_rgb(tmp_path / "big.png", big)
    outputs = []
    for flags in (["-t", 0], []):
        out = tmp_path / f"out{len(outputs)}.png"
        result = run_cli(src, "-o", out, "--model", models["sr"], "--memory-budget-mb", 64, *flags)
        assert result.returncode == 0, result.stderr
        assert " tiles, " in result.stdout  # tiled, not refused
        outputs.append(read_raw(out))
    assert outputs[0].shape == (320, 480, 3)
    assert np.array_equal(outputs[0], outputs[1])


# ------------------------------------------------------------------------ folders


def test_folder_is_mirrored_resumed_and_overwritten(models, photo, tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    save_rgb(src / "a.png", photo)
    save_rgb(src / "sub" / "b.jpg", photo)
    assert cv2.imwrite(str(src / "sub" / "deeper" / "c.tif"), cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))
    (src / "notes.txt").write_text("not an image, not listed")
    dst = tmp_path / "out" / "x2"  # created, parents too

    first = run_cli(src, "-o", dst, "--model", models["sr"])
    assert first.returncode == 0, first.stderr
    outputs = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert outputs == ["a.png", "sub/b.jpg", "sub/deeper/c.tif"]
    assert read_raw(dst / "sub" / "deeper" / "c.tif").ndim == 2
    assert "3 upscaled, 0 skipped" in first.stdout
    stamps = {p: p.stat().st_mtime_ns for p in dst.rglob("*") if p.is_file()}

    second = run_cli(src, "-o", dst, "--model", models["sr"])
    assert second.returncode == 0 and "0 upscaled, 3 skipped" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    third = run_cli(src, "-o", dst, "--model", models["sr"], "--overwrite")
    assert third.returncode == 0 and "3 upscaled, 0 skipped" in third.stdout
    assert all(p.stat().st_mtime_ns != t for p, t in stamps.items())


def test_folder_with_bad_files_reports_each_and_exits_non_zero(models, photo, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    save_rgb(src / "good.png", photo)
    (src / "empty.png").write_bytes(b"")
    good = (src / "good.png").read_bytes()
    (src / "truncated.png").write_bytes(good[: len(good) // 2])
    (src / "text.jpg").write_text("hello")
    save_rgb(src / "tiny.png", photo[:1, :1])
    result = run_cli(src, "-o", tmp_path / "out", "--model", models["sr"])
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (error,) = result.stderr.strip().splitlines()  # one line for all of them (issue 16)
    assert error.startswith("edgesr-run: error: 4 of 5 images failed (")
    assert all(n in error for n in ("empty.png", "truncated.png", "text.jpg", "tiny.png"))
    assert "1 upscaled, 0 skipped" in result.stdout and "4 failed" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]
