"""edgesr-run with Real-ESRGAN's habits (inference_realesrgan.py, realesrgan-ncnn-vulkan): -i,
default output results/{name}_out.{ext}, -s/--outscale (network scale, then Lanczos), --suffix,
--ext, -t 0 = auto, --tile-pad. Sizes are computed by hand; the -s path's oracle is OpenCV's
cv2.resize(INTER_LANCZOS4) of the network-scale output, as Real-ESRGAN resizes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from run_cli_util import H, W, assert_refused, models_fixture, photo_fixture, read_raw, run_cli, save_rgb  # noqa: F401 (fixtures)

TOY_SCALE = 2  # the toy model of conftest (models["sr"])


def test_default_output_is_results_name_out_ext_at_the_outscale(photo, tmp_path: Path) -> None:
    save_rgb(tmp_path / "photo.jpg", photo)
    result = run_cli("-i", "photo.jpg", "-s", 2, cwd=tmp_path)  # the shipped default model (x4)
    assert result.returncode == 0, result.stderr
    out = read_raw(tmp_path / "results" / "photo_out.jpg")
    assert out.shape == (2 * H, 2 * W, 3)  # 96x128: twice the 48x64 input, not the model's x4


def test_outscale_is_lanczos_of_the_network_output(models, photo, tmp_path: Path) -> None:
    src = save_rgb(tmp_path / "in.png", photo)
    net = run_cli(src, "-o", tmp_path / "net.png", "--model", models["sr"])
    assert net.returncode == 0, net.stderr
    network = read_raw(tmp_path / "net.png")
    assert network.shape == (H * TOY_SCALE, W * TOY_SCALE, 3)
    # sizes by hand: int(48 * F) x int(64 * F)
    for outscale, size in ((1.5, (72, 96)), (3, (144, 192)), (0.75, (36, 48))):
        out = tmp_path / f"s{outscale}.png"
        scaled = run_cli(src, "-o", out, "--model", models["sr"], "-s", outscale)
        assert scaled.returncode == 0, scaled.stderr
        expected = cv2.resize(network, (size[1], size[0]), interpolation=cv2.INTER_LANCZOS4)
        assert np.array_equal(read_raw(out), expected), outscale


def test_suffix_ext_and_an_output_folder(models, photo, tmp_path: Path) -> None:
    src = save_rgb(tmp_path / "photo.png", photo)
    (tmp_path / "out").mkdir()
    result = run_cli(src, "-o", tmp_path / "out", "--model", models["sr"], "--suffix", "x2", "--ext", "webp")
    assert result.returncode == 0, result.stderr
    assert read_raw(tmp_path / "out" / "photo_x2.webp").shape == (H * TOY_SCALE, W * TOY_SCALE, 3)
    result = run_cli(src, "-o", f"{tmp_path / 'out'}/", "--model", models["sr"], "--suffix", "")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "photo.png").is_file()  # empty suffix: {name}.{ext}


def test_transparency_stays_png_whatever_ext(models, photo, tmp_path: Path) -> None:
    rgba = np.dstack([photo, np.full((H, W), 200, np.uint8)])
    src = save_rgb(tmp_path / "logo.png", rgba)
    result = run_cli("-i", src, "--model", models["sr"], "--ext", "jpg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = read_raw(tmp_path / "results" / "logo_out.png")
    assert out.shape == (H * TOY_SCALE, W * TOY_SCALE, 4)
    assert not (tmp_path / "results" / "logo_out.jpg").exists()


def test_folder_without_output_goes_to_results_with_suffix(models, photo, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    save_rgb(tmp_path / "in" / "a.png", photo)
    save_rgb(tmp_path / "in" / "b.jpg", photo[:, ::-1])
    result = run_cli("-i", "in", "--model", models["sr"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["a_out.png", "b_out.jpg"]


def test_tile_pad_spellings_and_tile_0_auto(models, photo, tmp_path: Path) -> None:
    src = save_rgb(tmp_path / "in.png", photo)
    outputs = {}
    for name, flags in {"ours": ["--tile", 16, "--overlap", 4], "t": ["-t", 16, "--tile-pad", 4],
                        "underscore": ["-t", 16, "--tile_pad", 4], "auto": ["-t", 0]}.items():
        result = run_cli(src, "-o", tmp_path / f"{name}.png", "--model", models["sr"], *flags)
        assert result.returncode == 0, result.stderr
        # 64x48 in 16 px tiles: ceil(64/16) * ceil(48/16) = 12 tiles; auto: the whole image
        assert ("12 tiles" if name != "auto" else "whole image") in result.stdout, result.stdout
        outputs[name] = read_raw(tmp_path / f"{name}.png")
    assert np.array_equal(outputs["ours"], outputs["t"]) and np.array_equal(outputs["t"], outputs["underscore"])


def test_help_maps_realesrgan_flags_and_bad_combinations_are_one_line(models, photo, tmp_path: Path) -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for needle in ("Real-ESRGAN's flags", "-s/--outscale", "--tile_pad", "--suffix", "results/"):
        assert needle in result.stdout, needle
    src = save_rgb(tmp_path / "in.png", photo)
    assert_refused(run_cli(src, "-i", src, "--model", models["sr"]), "one input")
    assert_refused(run_cli(src, "-o", tmp_path / "o.png", "--ext", "jpg", "--model", models["sr"]), "--ext")
    assert_refused(run_cli(src, "-s", 0, "--model", models["sr"]), "--outscale")
    assert_refused(run_cli(src, "-s", 0.001, "--model", models["sr"], cwd=tmp_path), "at least one pixel")
    assert not (tmp_path / "o.png").exists()
