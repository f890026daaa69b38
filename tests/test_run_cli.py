"""``edgesr-run`` end to end: the real console script in a subprocess, real ONNX Runtime,
real image files of every mode, and every kind of bad input (exit 2, one line, no traceback,
nothing written)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import skimage.data
from onnx import TensorProto, helper
from PIL import Image

from edgesr.spec import ModelSpec
from edgesr.weights import shipped_onnx

from conftest import toy_sr_model
from oracles import bicubic_upscale

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("edgesr-run")
SCALE = 2
H, W = 48, 64


def run_cli(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "edgesr.runtime.cli"]
    return subprocess.run(command + [str(a) for a in args] + ["--threads", "1"], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)


def assert_refused(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, exactly one line on stderr, no traceback; returns that line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edgesr-run: error: ") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _with_metadata(model: onnx.ModelProto, spec: ModelSpec) -> onnx.ModelProto:
    for key, value in spec.to_metadata().items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    return model


def _model(nodes: list, output_shape: list, inits: list = ()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("sr", TensorProto.FLOAT, output_shape)], initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory, toy_onnx: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli_models")
    paths = {name: folder / f"{name}.onnx" for name in ("nometa", "classifier")}
    paths["sr"] = toy_onnx  # x2, tile 32, overlap 4 (conftest)
    onnx.save(toy_sr_model(SCALE), str(paths["nometa"]))
    classifier = _model([helper.make_node("GlobalAveragePool", ["lr"], ["p"]),
                         helper.make_node("Flatten", ["p"], ["sr"])], ["n", 3])
    onnx.save(classifier, str(paths["classifier"]))
    return paths


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """Real photo crop (scikit-image astronaut), H×W×3 uint8 RGB."""
    return np.ascontiguousarray(skimage.data.astronaut()[60 : 60 + H, 200 : 200 + W])


def save_rgb(path: Path, rgb: np.ndarray) -> Path:
    pixels = rgb[:, :, ::-1] if rgb.ndim == 3 and rgb.shape[2] == 3 else rgb
    if rgb.ndim == 3 and rgb.shape[2] == 4:
        pixels = rgb[:, :, [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), np.ascontiguousarray(pixels))
    return path


def read_raw(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def zero_size_png(path: Path) -> Path:
    """A PNG whose header says 0x0 pixels (what some broken tools write)."""
    ihdr = struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                     + _png_chunk(b"IDAT", zlib.compress(b"")) + _png_chunk(b"IEND", b""))
    return path


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


# ------------------------------------------------------------------------ refused inputs


def _bad_cases(tmp: Path, photo: np.ndarray, models: dict[str, Path]) -> dict[str, tuple[list, list[str]]]:
    """name -> (arguments, substrings the error line must hold)."""
    good = save_rgb(tmp / "good.png", photo)
    (tmp / "empty.png").write_bytes(b"")
    data = good.read_bytes()
    (tmp / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp / "text.png").write_text("not an image at all")
    save_rgb(tmp / "one.png", photo[:1, :1])
    zero_size_png(tmp / "zero.png")
    (tmp / "a_folder.png").mkdir()
    out = tmp / "out.png"
    sr = ["--model", models["sr"]]
    return {
        "missing input": ([tmp / "missing.png", "-o", out, *sr], ["does not exist"]),
        # (-o naming an existing folder puts {name}_out.{ext} in it: tests/test_realesrgan_flags.py)
        "folder as model file": ([good, "-o", out, "--model", tmp / "a_folder.png"], ["folder", ".onnx"]),
        "empty image": ([tmp / "empty.png", "-o", out, *sr], ["empty"]),
        "truncated image": ([tmp / "truncated.png", "-o", out, *sr], ["truncated"]),
        "not an image": ([tmp / "text.png", "-o", out, *sr], ["not a PNG"]),
        "1x1 image": ([tmp / "one.png", "-o", out, *sr], ["1x1", "minimum"]),
        "0x0 image": ([tmp / "zero.png", "-o", out, *sr], ["0x0", "minimum"]),
        "unknown output extension": ([good, "-o", tmp / "out.xyz", *sr], [".xyz", ".png .jpg"]),
        "output folder missing": ([good, "-o", tmp / "nowhere" / "out.png", *sr], ["does not exist"]),
        "onnx without metadata": ([good, "-o", out, "--model", models["nometa"]], ["--scale"]),
        "not an SR model": ([good, "-o", out, "--model", models["classifier"], "--scale", 2], ["not an SR model"]),
        "scale contradicts": ([good, "-o", out, *sr, "--scale", 4], ["--scale 4 contradicts", "x2"]),
        "model is not onnx": ([good, "-o", out, "--model", good], [".onnx"]),
        "model file missing": ([good, "-o", out, "--model", tmp / "gone.onnx"], ["does not exist", "edgesr-export"]),
        "unknown engine": ([good, "-o", out, *sr, "--engine", "tensorrt"], ["Did you mean 'trt'"]),
        "fp16 with an fp32 onnx": ([good, "-o", out, *sr, "--fp16"], ["edgesr-export", "--fp16"]),
        "torch engine with an onnx": ([good, "-o", out, *sr, "--engine", "torch"], ["--engine ort"]),
        "negative tile": ([good, "-o", out, *sr, "--tile", -5], ["--tile"]),
        "overlap too large": ([good, "-o", out, *sr, "--tile", 8, "--overlap", 8], ["overlap"]),
    }


def test_bad_inputs_exit_2_with_one_line_and_write_nothing(models, photo, tmp_path: Path) -> None:
    cases = _bad_cases(tmp_path, photo, models)
    before = sorted(p.name for p in tmp_path.iterdir())
    for name, (args, needles) in cases.items():
        result = run_cli(*args)
        try:
            assert_refused(result, *needles)
        except AssertionError as exc:
            raise AssertionError(f"case {name!r}: {exc}") from None
        assert sorted(p.name for p in tmp_path.iterdir()) == before, f"case {name!r} wrote a file"


def test_output_equal_to_input_is_refused_and_input_intact(models, photo, tmp_path: Path) -> None:
    src = save_rgb(tmp_path / "keep.png", photo)
    original = src.read_bytes()
    for extra in ([], ["--overwrite"]):
        assert_refused(run_cli(src, "-o", src, "--model", models["sr"], *extra), "never overwrites an input")
        link = tmp_path / "same.png"  # another spelling of the same file
        if not link.exists():
            os.link(src, link)
        assert_refused(run_cli(src, "-o", link, "--model", models["sr"], *extra), "input")
    assert src.read_bytes() == original


def test_existing_output_needs_overwrite(models, photo, tmp_path: Path) -> None:
    src = save_rgb(tmp_path / "in.png", photo)
    (tmp_path / "out.png").write_bytes(b"old")
    assert_refused(run_cli(src, "-o", tmp_path / "out.png", "--model", models["sr"]), "--overwrite")
    assert (tmp_path / "out.png").read_bytes() == b"old"
    assert run_cli(src, "-o", tmp_path / "out.png", "--model", models["sr"], "--overwrite").returncode == 0
    assert read_raw(tmp_path / "out.png").shape == (H * SCALE, W * SCALE, 3)


def test_trt_engine_unavailable_is_one_line(models, photo, tmp_path: Path) -> None:
    from edgesr.runtime.engines import engine_available

    if engine_available("trt")[0]:
        pytest.skip("TensorRT is usable here")
    src = save_rgb(tmp_path / "in.png", photo)
    assert_refused(run_cli(src, "-o", tmp_path / "o.png", "--model", models["sr"], "--engine", "trt"),
                   "engine 'trt' is not available", "--engine ort")


# ------------------------------------------------------------------------ default model


def test_without_a_shipped_model_the_error_says_how_to_get_one(photo, tmp_path: Path, monkeypatch,
                                                               capsys) -> None:
    # In process, with the shipped model hidden: a subprocess would always find it (it is
    # shipped), and this test then never ran.
    from edgesr.runtime import cli, run_model

    monkeypatch.setattr(run_model, "shipped_onnx", lambda name: None)
    src = save_rgb(tmp_path / "in.png", photo)
    assert cli.main([str(src), "-o", str(tmp_path / "o.png")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "edgesr-export --model lkdn_x4" in lines[0], lines
    assert "--model lkdn_x4.onnx" in lines[0] and not (tmp_path / "o.png").exists()


@pytest.mark.skipif(shipped_onnx("osffnet_x4") is None,
                    reason="osffnet_x4.onnx is not shipped yet (edgesr/weights/): the README's first "
                    "command needs it")
def test_readme_first_command_on_the_bundled_example(tmp_path: Path) -> None:
    example = REPO / "runtime" / "examples" / "chelsea_160x120.png"
    result = run_cli(example, "-o", tmp_path / "out.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_raw(tmp_path / "out.png").shape == (480, 640, 3)


def test_bundled_example_is_a_real_photo() -> None:
    example = REPO / "runtime" / "examples" / "chelsea_160x120.png"
    pixels = read_raw(example)
    assert pixels.shape == (120, 160, 3) and pixels.dtype == np.uint8
    crop = skimage.data.chelsea()[90:210, 135:295]
    assert np.array_equal(pixels[:, :, ::-1], crop)


def test_registered_model_name_goes_through_the_export_cache(photo, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("edgesr.export.cache")
    from edgesr.models import create_model
    from edgesr.weights_io import save_weights

    weights = save_weights(create_model("osffnet-tiny_x4"), tmp_path / "tiny.safetensors")
    src = save_rgb(tmp_path / "in.png", photo)
    env = dict(os.environ, EDGESR_CACHE_DIR=str(tmp_path / "cache"), HOME=str(tmp_path))
    result = run_cli(src, "-o", tmp_path / "o.png", "--model", "osffnet-tiny_x4", "--weights", weights, env=env)
    assert result.returncode == 0, result.stderr
    assert read_raw(tmp_path / "o.png").shape == (H * 4, W * 4, 3)


def test_torch_engine_runs_a_registered_model_with_weights(photo, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from edgesr.models import create_model
    from edgesr.weights_io import save_weights

    weights = save_weights(create_model("osffnet-tiny_x4"), tmp_path / "tiny.safetensors")
    src = save_rgb(tmp_path / "in.png", photo)
    result = run_cli(src, "-o", tmp_path / "o.png", "--model", "osffnet-tiny", "--scale", 4,
                     "--engine", "torch", "--weights", weights)
    assert result.returncode == 0, result.stderr
    assert "engine: torch on cpu (fp32, model=osffnet-tiny_x4, weights=tiny.safetensors" in result.stdout
    assert read_raw(tmp_path / "o.png").shape == (H * 4, W * 4, 3)


def test_compile_is_for_the_torch_engine_only(models, photo, tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), photo[:40, :40, ::-1])
    result = run_cli(src, "-o", tmp_path / "o.png", "--model", models["sr"], "--engine", "ort", "--compile")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "--compile applies to the torch engine" in result.stderr and not (tmp_path / "o.png").exists()
