"""``edgesr-run`` end to end on every kind of bad input (exit 2, one line, no traceback,
nothing written), and the default model: the real console script in a subprocess."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from edgesr.weights import shipped_onnx

from run_cli_util import (  # noqa: F401 (fixtures)
    H,
    REPO,
    SCALE,
    W,
    assert_refused,
    models_fixture,
    photo_fixture,
    read_raw,
    run_cli,
    save_rgb,
    zero_size_png,
)


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
