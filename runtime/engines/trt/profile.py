"""TensorRT optimization profiles: min/opt/max NCHW input shapes (pure Python).

:func:`profile_from_tiling` turns a model's tiling advice (tile size, overlap, smallest
input) into the profile; the profile is part of the engine cache key (``cache.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgesr.errors import ConfigError

__all__ = ["OptimizationProfile", "Shape4", "profile_from_tiling"]

Shape4 = tuple[int, int, int, int]


def _shape4(name: str, value: object) -> Shape4:
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        raise ConfigError(f"profile {name} must be 4 integers (N, C, H, W), received {value!r}")
    dims = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(
                f"profile {name} must be positive integers (N, C, H, W), received {value!r}"
            )
        dims.append(int(v))
    return (dims[0], dims[1], dims[2], dims[3])


@dataclass(frozen=True, kw_only=True)
class OptimizationProfile:
    """Min/opt/max NCHW shapes of the engine input (TensorRT optimization profile).

    Every axis must satisfy min <= opt <= max; C is fixed (all three equal).
    """

    min: Shape4
    opt: Shape4
    max: Shape4

    def __post_init__(self) -> None:
        lo = _shape4("min", self.min)
        mid = _shape4("opt", self.opt)
        hi = _shape4("max", self.max)
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "opt", mid)
        object.__setattr__(self, "max", hi)
        for axis, label in enumerate("NCHW"):
            if not lo[axis] <= mid[axis] <= hi[axis]:
                raise ConfigError(
                    f"profile axis {label}: need min <= opt <= max, received "
                    f"{lo[axis]} / {mid[axis]} / {hi[axis]}; widen max or lower min"
                )
        if not lo[1] == mid[1] == hi[1]:
            raise ConfigError(
                f"profile channels must be fixed, received {lo[1]} / {mid[1]} / {hi[1]}"
            )

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    def contains(self, shape: tuple[int, ...]) -> bool:
        """True if an NCHW ``shape`` lies inside [min, max] on every axis."""
        return len(shape) == 4 and all(
            lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max)
        )

    def describe(self) -> str:
        def fmt(s: Shape4) -> str:
            return "x".join(str(v) for v in s)

        return f"{fmt(self.min)} .. {fmt(self.opt)} .. {fmt(self.max)}"


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def profile_from_tiling(
    *,
    tile_px: int,
    overlap_px: int,
    min_size_px: int = 1,
    size_multiple: int = 1,
    channels: int = 3,
    batch: tuple[int, int, int] = (1, 1, 1),
) -> OptimizationProfile:
    """The profile for tiled inference (see ``runtime/tiling.py``).

    The tiler sends at most ``tile_px + 2 * overlap_px`` LR pixels per side, so that is the
    max (and the opt: most tiles are full). Images smaller than one tile go through whole,
    down to ``min_size_px`` (the model's smallest input; the engine pads anything smaller).
    Sides are rounded up to ``size_multiple``. ``batch`` is (min, opt, max) N.
    """
    for name, value, minimum in (
        ("tile_px", tile_px, 1),
        ("overlap_px", overlap_px, 0),
        ("min_size_px", min_size_px, 1),
        ("size_multiple", size_multiple, 1),
        ("channels", channels, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{name}={value!r}, expected an integer >= {minimum}")
    side_max = _round_up(tile_px + 2 * overlap_px, size_multiple)
    side_min = min(_round_up(min_size_px, size_multiple), side_max)
    n_min, n_opt, n_max = (int(v) for v in batch)
    return OptimizationProfile(
        min=(n_min, channels, side_min, side_min),
        opt=(n_opt, channels, side_max, side_max),
        max=(n_max, channels, side_max, side_max),
    )
