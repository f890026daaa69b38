"""Tiled inference: exactness for local models, engine size bound, seams, budgets."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from edgesr.errors import ConfigError, ImageError
from edgesr.runtime.seams import seam_score
from edgesr.runtime.tile_plan import MAX_TILE_PX, MIN_TILE_PX, inference_bytes, tile_px_from_budget
from edgesr.runtime.tiling import blend_weights, tile_spans, upscale_tiled


@pytest.fixture(scope="module")
def photo_lr() -> np.ndarray:
    """A real photo as (1, 3, 97, 131) float32: odd sizes on purpose."""
    rgb = skimage.data.astronaut()[60:157, 150:281].astype(np.float32) / 255.0
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


def box3(x: np.ndarray) -> np.ndarray:
    """3×3 mean with zero padding, like a conv layer: receptive-field radius 1."""
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    h, w = x.shape[2:]
    return sum(p[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0


def box_then_repeat(scale: int, passes: int = 1):
    """A pure local 'SR model': `passes` box filters (radius = passes), then nearest repeat."""

    def run(x: np.ndarray) -> np.ndarray:
        y = x
        for _ in range(passes):
            y = box3(y)
        return np.repeat(np.repeat(y, scale, axis=2), scale, axis=3).astype(np.float32)

    return run


class Recorder:
    """Wraps a run function and records the input shapes it received."""

    def __init__(self, run):
        self.run = run
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        assert x.dtype == np.float32 and x.flags.c_contiguous
        self.shapes.append(x.shape)
        return self.run(x)


@pytest.mark.parametrize(
    ("scale", "tile_px", "overlap_px", "blend_px", "passes"),
    [
        (2, 32, 4, None, 2),  # default blend = overlap: exact for radius <= overlap/2
        (3, 40, 3, 0, 3),  # centre crop: exact for radius <= overlap
        (4, 24, 5, 4, 3),  # radius <= overlap - blend/2
        (2, 17, 8, 16, 0),  # widest blend with a pointwise model
        (3, 21, 10, 20, 0),  # cores (about 16 px) thinner than the blend: ramps are narrowed
    ],
)
def test_tiled_equals_whole_for_local_model(photo_lr, scale, tile_px, overlap_px, blend_px, passes):
    run = box_then_repeat(scale, passes)
    whole = run(photo_lr)
    rec = Recorder(run)
    sr = upscale_tiled(
        photo_lr, rec, scale=scale, tile_px=tile_px, overlap_px=overlap_px, blend_px=blend_px
    )
    assert sr.shape == (1, 3, 97 * scale, 131 * scale) and sr.dtype == np.float32
    assert len(rec.shapes) > 1
    np.testing.assert_allclose(sr, whole, rtol=0, atol=2e-6)


def test_engine_never_sees_more_than_a_maximal_tile(photo_lr):
    tile_px, overlap_px = 30, 6
    rec = Recorder(box_then_repeat(2))
    upscale_tiled(photo_lr, rec, scale=2, tile_px=tile_px, overlap_px=overlap_px)
    bound = tile_px + 2 * overlap_px
    assert all(h <= bound and w <= bound for _, _, h, w in rec.shapes)
    assert all((h, w) != (97, 131) for _, _, h, w in rec.shapes)  # never the whole image
    assert len(rec.shapes) == len(tile_spans(97, tile_px=30, overlap_px=6)) * len(
        tile_spans(131, tile_px=30, overlap_px=6)
    )


def test_batch_of_two_goes_through_together(photo_lr):
    lr = np.concatenate([photo_lr, photo_lr[:, :, ::-1, ::-1]], axis=0)
    run = box_then_repeat(3, passes=1)
    rec = Recorder(run)
    sr = upscale_tiled(lr, rec, scale=3, tile_px=32, overlap_px=4)
    assert all(n == 2 for n, *_ in rec.shapes)
    np.testing.assert_allclose(sr, run(lr), atol=2e-6)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 1), (20, 20)])
def test_tiny_images_and_tile_larger_than_image_go_in_one_call(size):
    rng = np.random.default_rng(1)
    lr = rng.random((1, 3) + size, dtype=np.float32)
    run = box_then_repeat(4)
    rec = Recorder(run)
    calls = []
    sr = upscale_tiled(
        lr, rec, scale=4, tile_px=64, overlap_px=8, progress=lambda d, t: calls.append((d, t))
    )
    assert rec.shapes == [lr.shape]
    assert calls == [(1, 1)]
    np.testing.assert_array_equal(sr, run(lr))


def test_axis_within_one_maximal_tile_is_not_split(photo_lr):
    rec = Recorder(box_then_repeat(2))
    upscale_tiled(photo_lr[:, :, :, :80], rec, scale=2, tile_px=60, overlap_px=20)
    # height 97 and width 80 both fit in tile_px + 2*overlap_px = 100: one call, exact
    assert rec.shapes == [(1, 3, 97, 80)]


def test_progress_reports_every_tile(photo_lr):
    calls = []
    upscale_tiled(
        photo_lr, box_then_repeat(2), scale=2, tile_px=32, overlap_px=4,
        progress=lambda done, total: calls.append((done, total)),
    )
    total = calls[-1][1]
    assert total > 1 and calls == [(i, total) for i in range(1, total + 1)]


@pytest.mark.parametrize("length", [1, 2, 63, 64, 65, 97, 131, 200, 1001])
@pytest.mark.parametrize(("tile_px", "overlap_px"), [(16, 0), (32, 4), (64, 16), (50, 24)])
def test_tile_spans_partition_and_bound(length, tile_px, overlap_px):
    spans = tile_spans(length, tile_px=tile_px, overlap_px=overlap_px)
    assert spans[0].core_start == 0 and spans[-1].core_end == length
    for a, b in zip(spans, spans[1:]):
        assert a.core_end == b.core_start
    sizes = [s.core_end - s.core_start for s in spans]
    assert max(sizes) - min(sizes) <= 1  # even: no thin last tile
    for s in spans:
        assert s.in_size <= tile_px + 2 * overlap_px
        assert s.in_start == max(0, s.core_start - overlap_px)  # real context, clamped at borders
        assert s.in_end == min(length, s.core_end + overlap_px)
    if length > tile_px + 2 * overlap_px:
        assert len(spans) > 1


@pytest.mark.parametrize("length", [40, 64, 97, 131, 250])
@pytest.mark.parametrize(("tile_px", "overlap_px"), [(16, 0), (17, 8), (21, 10), (24, 5), (32, 4)])
@pytest.mark.parametrize("scale", [1, 3])
def test_blend_weights_of_adjacent_tiles_sum_to_one(length, tile_px, overlap_px, scale):
    """upscale_tiled adds weighted tile outputs without normalising: that is exact only
    because the weights of all tiles sum to 1 at every output pixel, for every blend width."""
    spans = tile_spans(length, tile_px=tile_px, overlap_px=overlap_px)
    for blend in range(0, 2 * overlap_px + 1):
        weights = blend_weights(spans, length=length, scale=scale, blend=blend)
        total = np.zeros(length * scale)
        for span, w in zip(spans, weights):
            assert w.shape == (span.in_size * scale,) and (w >= 0).all() and (w <= 1).all()
            total[span.in_start * scale : span.in_end * scale] += w
        np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-12, err_msg=f"blend_px={blend}")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"tile_px": 16, "overlap_px": 8}, "must exceed 2*overlap_px"),
        ({"tile_px": 0, "overlap_px": 0}, "tile_px=0"),
        ({"tile_px": 64, "overlap_px": -1}, "overlap_px=-1"),
        ({"tile_px": 64.0, "overlap_px": 8}, "integer"),
        ({"tile_px": True, "overlap_px": 0}, "integer"),
        ({"tile_px": 64, "overlap_px": 8, "scale": 0}, "scale=0"),
        ({"tile_px": 64, "overlap_px": 8, "blend_px": 17}, "blend_px=17"),
        ({"tile_px": 64, "overlap_px": 8, "blend_px": -1}, "blend_px=-1"),
    ],
)
def test_bad_arguments_raise_config_error(photo_lr, kwargs, needle):
    args = {"scale": 2, **kwargs}
    with pytest.raises(ConfigError) as exc:
        upscale_tiled(photo_lr, box_then_repeat(2), **args)
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("lr", "needle"),
    [
        (np.zeros((3, 8, 8), np.float32), "(N, 3, H, W)"),
        (np.zeros((1, 3, 8, 8), np.uint8), "float32"),
        (np.zeros((1, 3, 0, 8), np.float32), "empty"),
        ([[1.0]], "numpy array"),
    ],
)
def test_bad_lr_raises_image_error(lr, needle):
    with pytest.raises(ImageError) as exc:
        upscale_tiled(lr, box_then_repeat(2), scale=2, tile_px=32, overlap_px=4)
    assert needle in str(exc.value)


def test_engine_with_wrong_scale_is_reported(photo_lr):
    with pytest.raises(ConfigError) as exc:
        upscale_tiled(photo_lr, box_then_repeat(2), scale=4, tile_px=32, overlap_px=4)
    assert "scale=4" in str(exc.value) and "spec.scale" in str(exc.value)


def test_float64_input_is_accepted_as_float32(photo_lr):
    sr = upscale_tiled(
        photo_lr.astype(np.float64), box_then_repeat(2), scale=2, tile_px=32, overlap_px=4
    )
    assert sr.dtype == np.float32


# ------------------------------------------------------------------------------- seams


def test_seam_score_is_one_for_seamless_output(photo_lr):
    kw = {"tile_px": 32, "overlap_px": 4}
    run = box_then_repeat(2)
    sr = upscale_tiled(photo_lr, run, scale=2, **kw)
    score = seam_score(sr, scale=2, **kw)
    assert 0.8 < score < 1.25
    # nearest-neighbour output has gradients only at LR pixel boundaries: not a seam
    assert seam_score(run(photo_lr), scale=2, **kw) == pytest.approx(score, rel=1e-6)
    assert seam_score(sr, scale=2, tile_px=200, overlap_px=4) == 1.0  # one tile: no seam lines


def test_seam_score_detects_a_seam(photo_lr):
    kw = {"tile_px": 32, "overlap_px": 4}
    sr = upscale_tiled(photo_lr, box_then_repeat(2), scale=2, **kw)
    seamed = sr.copy()
    # a checkerboard of +-0.03 brightness over the tile cores: a step at every tile boundary
    for i, sy in enumerate(tile_spans(97, **kw)):
        for j, sx in enumerate(tile_spans(131, **kw)):
            step = 0.03 if (i + j) % 2 else -0.03
            rows = slice(sy.core_start * 2, sy.core_end * 2)
            cols = slice(sx.core_start * 2, sx.core_end * 2)
            seamed[..., rows, cols] += step
    assert seam_score(seamed, scale=2, **kw) > 1.5
    one_line = sr.copy()
    one_line[..., tile_spans(131, **kw)[1].core_start * 2 :] += 0.15  # one strong seam
    assert seam_score(one_line, scale=2, **kw) > 1.2
    assert seam_score(seamed[0], scale=2, **kw) == pytest.approx(seam_score(seamed, scale=2, **kw))
    flat = np.zeros((1, 3, 128, 128), np.float32)
    assert seam_score(flat, scale=2, **kw) == 1.0
    flat[..., 64:] = 1.0
    assert seam_score(flat, scale=2, **kw) == float("inf")


def test_blending_hides_seams_of_a_global_statistics_model(photo_lr):
    """A model whose output depends on a tile-wide mean (like CCA) cannot tile exactly."""

    def global_model(x: np.ndarray) -> np.ndarray:
        y = x + 0.3 * (x.mean(axis=(1, 2, 3), keepdims=True) - 0.5)
        return np.repeat(np.repeat(y, 2, axis=2), 2, axis=3).astype(np.float32)

    kw = {"tile_px": 32, "overlap_px": 8}
    cropped = upscale_tiled(photo_lr, global_model, scale=2, blend_px=0, **kw)
    blended = upscale_tiled(photo_lr, global_model, scale=2, **kw)
    crop_score = seam_score(cropped, scale=2, **kw)
    blend_score = seam_score(blended, scale=2, **kw)
    assert crop_score > 1.3
    assert blend_score < crop_score and blend_score < 1.2


def test_seam_score_validates(photo_lr):
    with pytest.raises(ConfigError):
        seam_score(np.zeros((1, 3, 9, 10), np.float32), tile_px=32, overlap_px=4, scale=2)
    with pytest.raises(ImageError):
        seam_score(np.zeros(10, np.float32), tile_px=32, overlap_px=4, scale=2)


# ------------------------------------------------------------------------------ budget


def test_tile_px_from_budget_model():
    # 4 bytes * (61 + 3 + 3*4) = 304 bytes per pixel; 304 * 200**2 bytes -> side 200
    assert inference_bytes(height=200, width=200, scale=2, channels_estimate=61, bytes_per_value=4) == 304 * 200**2
    assert tile_px_from_budget(budget_bytes=304 * 200**2, scale=2, channels_estimate=61) == 200
    assert (
        tile_px_from_budget(budget_bytes=304 * 200**2, scale=2, channels_estimate=61, overlap_px=16)
        == 168
    )
    # fp16 halves the bytes -> about sqrt(2) larger, rounded down to a multiple of 8
    fp16 = tile_px_from_budget(
        budget_bytes=304 * 200**2, scale=2, channels_estimate=61, bytes_per_value=2
    )
    assert fp16 == 280 and fp16 % 8 == 0


def test_tile_px_from_budget_rounds_and_clamps(caplog):
    sizes = [
        tile_px_from_budget(budget_bytes=b, scale=4, channels_estimate=256)
        for b in (2**20, 2**26, 2**28, 2**30, 2**34, 2**40)
    ]
    assert all(s % 8 == 0 and MIN_TILE_PX <= s <= MAX_TILE_PX for s in sizes)
    assert sizes == sorted(sizes)
    assert sizes[0] == MIN_TILE_PX and sizes[-1] == MAX_TILE_PX
    assert "minimum" in caplog.text
    with pytest.raises(ConfigError):
        tile_px_from_budget(budget_bytes=0, scale=4, channels_estimate=64)
    with pytest.raises(ConfigError):
        tile_px_from_budget(budget_bytes=2**30, scale=4, channels_estimate=0)
