"""The edgesr-run pipeline: tiling plan, tiled vs whole-image through the real ONNX Runtime
engine, file and folder runs (real images, real ONNX files)."""

from __future__ import annotations

import math

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import skimage.data

from edgesr.errors import ConfigError, ImageError, OutputError
from edgesr.runtime.engines.ort import OrtEngine, OrtOptions
from edgesr.runtime.image_write import check_output_path
from edgesr.runtime.imageio import nchw_from_rgb, read_image
from edgesr.runtime.tile_plan import MIB, PEAK_VALUES_PER_PIXEL, estimate_inference_bytes, plan_tiling
from edgesr.runtime.seams import seam_score
from edgesr.runtime.upscale import upscale_file, upscale_image
from edgesr.runtime.upscale_folder import folder_jobs, upscale_folder
from edgesr.spec import ModelSpec

from conftest import toy_sr_model

ONE_THREAD = OrtOptions(intra_op_threads=1)


def _with_metadata(model: onnx.ModelProto, spec: ModelSpec) -> onnx.ModelProto:
    for key, value in spec.to_metadata().items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    return model


def conv_sr_onnx(path: Path, *, scale: int, spec: ModelSpec | None) -> Path:
    """A local x``scale`` SR graph (3x3 conv + DepthToSpace, receptive radius 1 px):
    nearest-neighbour upscaling plus a small random 3x3 mix, built with the onnx package."""
    model = toy_sr_model(scale, noise=0.02)
    if spec is not None:
        _with_metadata(model, spec)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def conv_x2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = ModelSpec(arch="conv_x2", scale=2, tile_px=48, overlap_px=8)
    return conv_sr_onnx(tmp_path_factory.mktemp("upscale") / "conv_x2.onnx", scale=2, spec=spec)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo crop (scikit-image's coffee), H×W×3 uint8 RGB, 96x128."""
    return np.ascontiguousarray(skimage.data.coffee()[150:246, 200:328])


def _save(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))
    return path


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


# ------------------------------------------------------------------------ plan


SPEC = ModelSpec(arch="m", scale=4, tile_px=256, overlap_px=16, min_size_px=15)


def test_default_tile_is_the_model_advice_when_the_budget_allows() -> None:
    plan = plan_tiling(height=1000, width=700, spec=SPEC, memory_budget_bytes=1024 * MIB)
    assert (plan.tile_px, plan.overlap_px, plan.rule, plan.whole_image) == (256, 16, "model advice", False)
    assert plan.tiles == 4 * 3
    # a smaller --overlap keeps the engine input at the advised 256 + 2 * 16 px
    plan = plan_tiling(height=1000, width=700, spec=SPEC, overlap_px=4)
    assert (plan.tile_px, plan.overlap_px, plan.rule) == (280, 4, "model advice")


def test_default_tile_shrinks_to_the_memory_budget() -> None:
    plan = plan_tiling(height=1000, width=700, spec=SPEC, memory_budget_bytes=128 * MIB)
    assert plan.rule == "memory budget" and 64 <= plan.tile_px < 256
    side = plan.tile_px + 2 * plan.overlap_px
    assert estimate_inference_bytes(height=side, width=side, spec=SPEC) <= 128 * MIB
    assert plan.estimated_bytes <= 128 * MIB


def test_engines_without_an_input_range_take_the_budget_tile() -> None:
    # by hand: 4 bytes x (PEAK + 3 + 3 x 4^2) per pixel; side = isqrt(budget / that),
    # minus 2 x 16 overlap, down to a multiple of 8
    per_pixel = 4 * (PEAK_VALUES_PER_PIXEL + 3 + 48)
    side = math.isqrt(1024 * MIB // per_pixel)
    expected = (side - 32) // 8 * 8
    plan = plan_tiling(height=1000, width=700, spec=SPEC, limit_to_advice=False)
    assert (plan.tile_px, plan.rule) == (expected, "memory budget") and expected > SPEC.tile_px
    # a 320x180 frame fits one call: the whole image, no overlap recompute
    plan = plan_tiling(height=180, width=320, spec=SPEC, limit_to_advice=False)
    assert plan.tiles == 1
    assert plan_tiling(height=180, width=320, spec=SPEC).tiles == 2  # TensorRT: the advice


def test_small_images_go_through_in_one_call_by_default() -> None:
    plan = plan_tiling(height=180, width=288, spec=SPEC)  # 288 = tile + 2 * overlap
    assert plan.tiles == 1 and not plan.whole_image


def test_explicit_tile_and_overlap_win() -> None:
    plan = plan_tiling(height=500, width=500, spec=SPEC, tile_px=100, overlap_px=4)
    assert (plan.tile_px, plan.overlap_px, plan.rule) == (100, 4, "--tile")
    with pytest.raises(ConfigError, match="2 \\* overlap"):
        plan_tiling(height=500, width=500, spec=SPEC, tile_px=20, overlap_px=10)
    with pytest.raises(ConfigError, match="--overlap"):
        plan_tiling(height=500, width=500, spec=SPEC, overlap_px=-1)


def test_whole_image_is_refused_above_the_budget_with_advice() -> None:
    needed = estimate_inference_bytes(height=400, width=600, spec=SPEC)
    assert needed == 4 * 400 * 600 * (PEAK_VALUES_PER_PIXEL + 3 + 48)
    with pytest.raises(ConfigError) as exc:
        plan_tiling(height=400, width=600, spec=SPEC, tile_px=0, memory_budget_bytes=needed - 1)
    message = str(exc.value)
    assert "\n" not in message and "drop --tile 0" in message and "--memory-budget-mb" in message
    plan = plan_tiling(height=400, width=600, spec=SPEC, tile_px=0, memory_budget_bytes=needed)
    assert plan.whole_image and plan.tiles == 1 and plan.rule == "--tile 0"


def test_fp16_models_get_twice_the_pixels() -> None:
    fp16 = ModelSpec(arch="m", scale=4, precision="fp16")
    assert 2 * estimate_inference_bytes(height=64, width=64, spec=fp16) == estimate_inference_bytes(
        height=64, width=64, spec=ModelSpec(arch="m", scale=4))


# ------------------------------------------------------------------------ tiled vs whole


def test_tiled_equals_whole_for_a_local_model(conv_x2: Path, photo: np.ndarray, tmp_path: Path) -> None:
    image = read_image(_save(tmp_path / "p.png", photo))
    with OrtEngine(model_path=conv_x2, options=ONE_THREAD) as engine:
        whole = plan_tiling(height=image.height, width=image.width, spec=engine.spec, tile_px=0)
        tiled = plan_tiling(height=image.height, width=image.width, spec=engine.spec, tile_px=32, overlap_px=4)
        assert tiled.tiles == 3 * 4
        calls: list[tuple[int, int]] = []
        a, _, _ = upscale_image(image, engine, plan=whole)
        b, _, _ = upscale_image(image, engine, plan=tiled, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (12, 12)
    assert a.shape == (192, 256, 3)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_tiled_vs_whole_for_osffnet_is_close_and_seamless(tiny_export: Path, photo: np.ndarray) -> None:
    """Global statistics (CCA, ESA) make tiles differ a little; measured, bounded, no seams."""
    lr = nchw_from_rgb(photo.astype(np.float32) / 255.0)
    with OrtEngine(model_path=tiny_export, options=ONE_THREAD) as engine:
        whole = engine.run(lr)
        from edgesr.runtime.tiling import upscale_tiled

        tiled = upscale_tiled(lr, engine.run, scale=4, tile_px=48, overlap_px=12)
    psnr = _psnr(np.clip(whole, 0, 1), np.clip(tiled, 0, 1))
    seams = seam_score(tiled, tile_px=48, overlap_px=12, scale=4)
    print(f"osffnet-tiny x4, 96x128, tile 48 overlap 12: tiled vs whole PSNR {psnr:.1f} dB, "
          f"max abs {np.abs(whole - tiled).max():.2e}, seam score {seams:.3f}")
    assert psnr > 40.0
    assert seams < 1.5


# ------------------------------------------------------------------------ files and folders


def test_upscale_file_keeps_gray_and_16_bit(conv_x2: Path, photo: np.ndarray, tmp_path: Path) -> None:
    gray16 = (cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)
    src = tmp_path / "g16.png"
    assert cv2.imwrite(str(src), gray16)
    with OrtEngine(model_path=conv_x2, options=ONE_THREAD) as engine:
        result = upscale_file(src, tmp_path / "out.tif", engine=engine)
    out = cv2.imread(str(result.output_path), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (192, 256)
    assert (result.width, result.height, result.out_width, result.out_height) == (128, 96, 256, 192)
    # ONNX Runtime on the CPU has no input range: the memory budget's tile, so one call here
    assert (result.plan.tiles, result.plan.rule) == (1, "memory budget") and result.inference_ms > 0


def test_upscale_file_takes_an_image_and_plan_read_before(conv_x2: Path, photo: np.ndarray, tmp_path: Path) -> None:
    """What edgesr-run does: read and plan before opening the engine, then hand both over.
    A whole-image plan goes through the tiler as one tile: one engine call on the image."""
    src = _save(tmp_path / "in.png", photo)
    image = read_image(src)
    with OrtEngine(model_path=conv_x2, options=ONE_THREAD) as ort_engine:
        plan = plan_tiling(height=image.height, width=image.width, spec=ort_engine.spec, tile_px=0)
        shapes: list[tuple[int, ...]] = []

        class Recording:
            spec = ort_engine.spec

            def run(self, lr: np.ndarray) -> np.ndarray:
                shapes.append(lr.shape)
                return ort_engine.run(lr)

        progress: list[tuple[int, int]] = []
        result = upscale_file(src, tmp_path / "out.png", engine=Recording(), image=image, plan=plan,  # type: ignore[arg-type]
                              tile_progress=lambda total: lambda d, t: progress.append((d, t)))
    assert result.plan is plan and plan.whole_image and result.plan.tiles == 1
    assert shapes == [(1, 3, 96, 128)] and progress == [(1, 1)]
    assert (result.out_width, result.out_height) == (256, 192)
    assert read_image(result.output_path).rgb.shape == (192, 256, 3)


def test_check_output_refuses_before_any_work(tmp_path: Path, photo: np.ndarray) -> None:
    src = _save(tmp_path / "in.png", photo)
    with pytest.raises(ImageError, match=".png .jpg"):
        check_output_path(tmp_path / "out.gif", inputs=[src], overwrite=False)
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.png", inputs=[src], overwrite=False)
    with pytest.raises(OutputError, match="never overwrites an input"):
        check_output_path(src, inputs=[src], overwrite=True)


def test_folder_jobs_mirror_and_guard(tmp_path: Path, photo: np.ndarray) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    _save(src / "a.png", photo)
    _save(src / "sub" / "b.jpg", photo)
    jobs = folder_jobs(src, src / "out")
    assert [(i.relative_to(src).as_posix(), o.relative_to(src).as_posix()) for i, o in jobs] == [
        ("a.png", "out/a.png"), ("sub/b.jpg", "out/sub/b.jpg")]
    (src / "out").mkdir()
    _save(src / "out" / "a.png", photo)  # an earlier output inside the input folder
    assert len(folder_jobs(src, src / "out")) == 2
    with pytest.raises(ImageError, match="is the input folder"):
        folder_jobs(src, tmp_path / "in" / "." )
    with pytest.raises(ImageError, match="must be a folder"):
        folder_jobs(src, tmp_path / "x4.png")
    with pytest.raises(ImageError, match="would replace the input"):
        nested = tmp_path / "outer" / "in"
        (nested / "in").mkdir(parents=True)
        _save(nested / "a.png", photo)
        _save(nested / "in" / "a.png", photo)  # its mirrored output is outer/in/a.png: an input
        folder_jobs(nested, tmp_path / "outer")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no images found"):
        folder_jobs(tmp_path / "empty", tmp_path / "o")


def test_folder_run_counts_failures_and_goes_on(conv_x2: Path, photo: np.ndarray, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _save(src / "a.png", photo)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    _save(src / "c.png", photo[:40, :50])
    seen = []
    with OrtEngine(model_path=conv_x2, options=ONE_THREAD) as engine:
        report = upscale_folder(src, tmp_path / "out", engine=engine, on_item=seen.append)
        again = upscale_folder(src, tmp_path / "out", engine=engine)
    assert (report.done, report.skipped, report.failed) == (2, 0, 1)
    assert [i.status for i in seen] == ["done", "failed", "done"]
    assert "truncated" in seen[1].error and not (tmp_path / "out" / "broken.png").exists()
    assert (again.done, again.skipped, again.failed) == (0, 2, 1)
