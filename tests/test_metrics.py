"""PSNR/SSIM with the SR conventions (edgesr.metrics), checked against scikit-image."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgesr.data.degrade import imresize, lr_from_hr
from edgesr.errors import ConfigError, ImageError
from edgesr.metrics import psnr, psnr_y, rgb_to_y, ssim, ssim_y

skimage_data = pytest.importorskip("skimage.data")
from skimage.color import rgb2ycbcr  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402


def _sk_ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    # Wang et al.: Gaussian 11x11 (skimage truncates at 3.5 sigma = radius 5), sigma 1.5,
    # population covariance, statistics averaged over the valid region (skimage crops 5 px).
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range
    )


@pytest.fixture(scope="module")
def sr_cases() -> list[tuple[str, int, np.ndarray, np.ndarray]]:
    """(photo, scale, sr float in [0, 1] unrounded, hr uint8): bicubic SR of real photos."""
    cases = []
    for photo, scale in (("astronaut", 4), ("chelsea", 3), ("coffee", 2)):
        hr, lr = lr_from_hr(getattr(skimage_data, photo)(), scale=scale)
        sr = imresize(lr.astype(np.float64) / 255.0, scale=scale)
        cases.append((photo, scale, sr, hr))
    return cases


def _reference_y(image: np.ndarray, crop: int) -> np.ndarray:
    """skimage's BT.601 Y (16-235) of the 8-bit image, border cropped."""
    y = rgb2ycbcr(image)[..., 0]
    return y[crop:-crop, crop:-crop]


def _round8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(image * 255.0 + 0.5), 0, 255).astype(np.uint8)


def test_rgb_to_y_matches_skimage_and_range() -> None:
    image = skimage_data.coffee()
    np.testing.assert_allclose(rgb_to_y(image), rgb2ycbcr(image)[..., 0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(rgb_to_y(image / 255.0), rgb2ycbcr(image)[..., 0], rtol=0, atol=1e-10)
    assert rgb_to_y(np.zeros((2, 2, 3), np.uint8)).tolist() == [[16.0, 16.0], [16.0, 16.0]]
    np.testing.assert_allclose(rgb_to_y(np.ones((2, 2, 3))), 235.0, atol=1e-12)
    gray = np.full((3, 3), 0.5)
    np.testing.assert_allclose(rgb_to_y(gray), rgb_to_y(np.repeat(gray[..., None], 3, axis=2)))


def test_psnr_y_and_ssim_y_match_skimage_on_real_photos(sr_cases) -> None:
    """Found: both agree with scikit-image to ~1e-15 (same float64 arithmetic); assert 1e-10."""
    for photo, scale, sr, hr in sr_cases:
        y_sr = _reference_y(_round8(sr), scale)
        y_hr = _reference_y(hr, scale)
        expected_psnr = peak_signal_noise_ratio(y_hr, y_sr, data_range=255)
        expected_ssim = _sk_ssim(y_hr, y_sr, 255)
        assert psnr_y(sr, hr, crop_border=scale) == pytest.approx(expected_psnr, abs=1e-10), photo
        assert ssim_y(sr, hr, crop_border=scale) == pytest.approx(expected_ssim, abs=1e-10), photo
        assert 20 < expected_psnr < 40 and 0.5 < expected_ssim < 1.0  # a sane bicubic result


def test_sr_is_rounded_to_8_bit_first(sr_cases) -> None:
    _, scale, sr, hr = sr_cases[0]
    assert psnr_y(sr, hr, crop_border=scale) == psnr_y(_round8(sr), hr, crop_border=scale)
    assert ssim_y(sr, hr, crop_border=scale) == ssim_y(_round8(sr), hr, crop_border=scale)
    unrounded = psnr(rgb_to_y(sr)[scale:-scale, scale:-scale], rgb_to_y(hr)[scale:-scale, scale:-scale], data_range=255)
    assert unrounded != psnr_y(sr, hr, crop_border=scale)


def test_crop_border_is_applied(sr_cases) -> None:
    _, scale, sr, hr = sr_cases[1]
    c = scale
    assert psnr_y(sr, hr, crop_border=c) == psnr_y(sr[c:-c, c:-c], hr[c:-c, c:-c], crop_border=0)
    assert ssim_y(sr, hr, crop_border=c) == ssim_y(sr[c:-c, c:-c], hr[c:-c, c:-c], crop_border=0)
    assert psnr_y(sr, hr, crop_border=c) != psnr_y(sr, hr, crop_border=0)


def test_identical_images() -> None:
    image = skimage_data.chelsea()[:64, :80]
    assert psnr_y(image, image, crop_border=4) == float("inf")
    assert ssim_y(image, image, crop_border=4) == 1.0
    assert psnr(image / 255.0, image / 255.0, data_range=1.0) == float("inf")
    assert ssim(image[..., 0] / 255.0, image[..., 0] / 255.0, data_range=1.0) == 1.0


def test_plain_psnr_and_ssim_match_skimage() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((48, 40))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    assert psnr(a, b, data_range=1.0) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-10)
    assert ssim(a, b, data_range=1.0) == pytest.approx(_sk_ssim(a, b, 1.0), abs=1e-10)
    # psnr works on any shape (e.g. NCHW float outputs of two engines)
    x = rng.random((1, 3, 8, 8)).astype(np.float32)
    assert psnr(x, x + np.float32(0.01), data_range=1.0) == pytest.approx(40.0, abs=1e-3)


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (lambda: psnr_y(np.zeros((20, 20, 3)), np.zeros((20, 21, 3)), crop_border=2), ImageError, "(20, 21, 3)"),
        (lambda: psnr_y(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), crop_border=4), ImageError, "nothing after cropping"),
        (lambda: psnr_y(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), crop_border=-1), ConfigError, "received -1"),
        (lambda: psnr_y(np.zeros((1, 3, 8, 8)), np.zeros((1, 3, 8, 8)), crop_border=0), ImageError, "HxWx3"),
        (lambda: psnr_y(np.zeros((8, 8, 3), np.int32), np.zeros((8, 8, 3), np.int32), crop_border=0), ImageError, "int32"),
        (lambda: ssim_y(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)), crop_border=4), ImageError, "at least 11x11"),
        (lambda: psnr(np.zeros(3), np.zeros(3), data_range=0), ConfigError, "data_range"),
        (lambda: psnr([0.0], [0.0], data_range=1), ImageError, "list"),
        (lambda: ssim(np.zeros((12, 12, 3)), np.zeros((12, 12, 3)), data_range=1), ImageError, "2-D"),
    ],
)
def test_errors(call, error, text) -> None:
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


def test_metrics_do_not_import_torch() -> None:
    code = "import sys, edgesr.metrics; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
