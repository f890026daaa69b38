"""TensorRT optimisation profiles: from the tiling, and their validation (no GPU)."""

from __future__ import annotations

import dataclasses

import pytest

from edgesr.errors import ConfigError
from edgesr.runtime.engines.trt.profile import OptimizationProfile, profile_from_tiling


def test_profile_from_tiling() -> None:
    profile = profile_from_tiling(tile_px=256, overlap_px=16, min_size_px=15)
    assert profile.min == (1, 3, 15, 15)
    assert profile.opt == profile.max == (1, 3, 288, 288)
    assert profile.contains((1, 3, 15, 288)) and not profile.contains((1, 3, 14, 20))
    assert not profile.contains((1, 3, 289, 20)) and not profile.contains((2, 3, 20, 20))
    rounded = profile_from_tiling(tile_px=250, overlap_px=10, min_size_px=15, size_multiple=8, batch=(1, 2, 4))
    assert rounded.min == (1, 3, 16, 16)
    assert rounded.opt == (2, 3, 272, 272) and rounded.max == (4, 3, 272, 272)
    assert profile.describe() == "1x3x15x15 .. 1x3x288x288 .. 1x3x288x288"


def test_profile_min_never_exceeds_max() -> None:
    profile = profile_from_tiling(tile_px=8, overlap_px=0, min_size_px=64)
    assert profile.min[2] == profile.max[2] == 8


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tile_px": 0, "overlap_px": 16},
        {"tile_px": 256, "overlap_px": -1},
        {"tile_px": 256, "overlap_px": 16, "min_size_px": 0},
        {"tile_px": 256.0, "overlap_px": 16},
        {"tile_px": True, "overlap_px": 16},
    ],
)
def test_profile_from_tiling_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        profile_from_tiling(**kwargs)  # type: ignore[arg-type]


def test_optimization_profile_validation() -> None:
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        OptimizationProfile(min=(1, 3, 64, 64), opt=(1, 3, 32, 32), max=(1, 3, 128, 128))
    with pytest.raises(ConfigError, match="channels"):
        OptimizationProfile(min=(1, 1, 8, 8), opt=(1, 3, 8, 8), max=(1, 3, 8, 8))
    with pytest.raises(ConfigError, match="4 integers"):
        OptimizationProfile(min=(1, 3, 8), opt=(1, 3, 8, 8), max=(1, 3, 8, 8))  # type: ignore[arg-type]
    lists = OptimizationProfile(min=[1, 3, 8, 8], opt=[1, 3, 8, 8], max=[1, 3, 9, 9])  # type: ignore[arg-type]
    assert lists.max == (1, 3, 9, 9)
    assert dataclasses.replace(lists, max=(1, 3, 10, 10)).max == (1, 3, 10, 10)
