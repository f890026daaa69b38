"""edgesr-data tiles --rescale: tiles cut from each photo downscaled as well.

Oracles: hand computations on stripes (8-px bars of 0 and 200 average, x4, to LR columns
0, 0, 200, 200, ...: a 128-px tile has 32 LR columns, so 31 horizontal neighbour pairs of which
15 step by 200, and no vertical step: detail (200 * 15 / 31 + 0) / 2 = 48.39), and MATLAB-compatible ``imresize`` (checked against MATLAB's own
values in tests/test_degrade.py) for the pixels of a downscaled photo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from battery_util import assert_refused, run
from edgesr.data.degrade import imresize
from edgesr.data.detail_tiles import choose_tiles, write_detail_tiles
from edgesr.errors import DataError

BARS_DETAIL = (200 * 15 / 31 + 0) / 2  # a 128-px tile of 8-px bars, by hand (see above)


def _bars(height: int, width: int, *, bar_px: int) -> np.ndarray:
    columns = ((np.arange(width) // bar_px) % 2 * 200).astype(np.uint8)
    return np.repeat(np.tile(columns, (height, 1))[..., None], 3, axis=2)


def _save(folder: Path, name: str, rgb: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(folder / name)
    return folder / name


def test_without_rescale_the_tiles_are_those_of_the_photo_as_it_is(tmp_path: Path) -> None:
    _save(tmp_path / "photos", "bars.png", _bars(256, 256, bar_px=8))
    plain, _ = choose_tiles(tmp_path / "photos", tile_px=128, count=9, per_image=9, scale=4)
    same, _ = choose_tiles(tmp_path / "photos", tile_px=128, count=9, per_image=9, scale=4, rescales=[1])
    assert plain == same
    assert [t.name for t in plain[:2]] == ["bars-0-0.png", "bars-0-64.png"]  # ties go by position
    assert [t.detail for t in plain] == pytest.approx([BARS_DETAIL] * 9)
    assert all(t.rescale == 1 for t in plain)


def test_a_half_size_photo_holds_denser_edges_and_its_tiles_come_first(tmp_path: Path) -> None:
    _save(tmp_path / "photos", "bars.png", _bars(256, 512, bar_px=8))
    tiles, _ = choose_tiles(tmp_path / "photos", tile_px=128, count=20, per_image=20, scale=4,
                            rescales=[1, 0.5])
    halves = [t for t in tiles if t.rescale == 0.5]
    # At half size the 8-px bars are about 4 px: more steps per LR row than at full size.
    assert halves and tiles[0].rescale == 0.5 and tiles[0].detail > BARS_DETAIL
    full = [t.detail for t in tiles if t.rescale == 1]
    assert full == pytest.approx([BARS_DETAIL] * len(full))
    # 256x512 at 0.5 is 128x256: one row of tiles at left 0, 64, 128.
    assert sorted((t.top, t.left) for t in halves) == [(0, 0), (0, 64), (0, 128)]
    assert halves[0].name.startswith("bars-r050-0-")


def test_the_cap_counts_every_size_of_a_photo(tmp_path: Path) -> None:
    _save(tmp_path / "photos", "bars.png", _bars(256, 512, bar_px=8))
    tiles, _ = choose_tiles(tmp_path / "photos", tile_px=128, count=20, per_image=2, scale=4,
                            rescales=[1, 0.75, 0.5])
    assert len(tiles) == 2


def test_rescaled_tiles_hold_the_downscaled_pixels_and_say_so(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, size=(256, 320, 3), dtype=np.uint8)
    _save(tmp_path / "corpus" / "train", "p.png", photo)
    (tmp_path / "corpus" / "LICENSES.md").write_text(
        "| split | file | source | licence | copyright holders |\n|---|---|---|---|---|\n"
        "| train | train/p.png | a package | CC0-1.0 | A. Photographer |\n", encoding="utf-8")
    tiles = write_detail_tiles(tmp_path / "corpus" / "train", tmp_path / "tiles", tile_px=64, count=200,
                               per_image=200, scale=4, rescales=[1, 0.75])
    smaller = imresize(photo, scale=0.75)  # 192x240
    rescaled = [t for t in tiles if t.rescale == 0.75]
    assert rescaled
    for t in rescaled:
        written = np.asarray(Image.open(tmp_path / "tiles" / t.name).convert("RGB"))
        np.testing.assert_array_equal(written, smaller[t.top : t.top + 64, t.left : t.left + 64])
    licences = (tmp_path / "tiles" / "LICENSES.md").read_text(encoding="utf-8")
    t = rescaled[0]
    assert f"| {t.name} | p.png downscaled to 0.75x, at ({t.top}, {t.left}) |" in licences
    assert licences.count("| a package | CC0-1.0 | A. Photographer |") == len(tiles)


@pytest.mark.parametrize("rescales", [[0, 1], [1, 1], [1.5], [], [0.751, 0.749], [0.004]])
def test_factors_outside_zero_to_one_or_repeated_are_refused(tmp_path: Path, rescales: list[float]) -> None:
    _save(tmp_path / "photos", "bars.png", _bars(128, 128, bar_px=8))
    with pytest.raises(DataError, match="distinct factors in"):
        choose_tiles(tmp_path / "photos", tile_px=64, count=1, per_image=1, scale=4, rescales=rescales)


@pytest.mark.parametrize(("flag", "needle"), [("1,x", "not a comma-separated list"), ("1,2", "distinct factors")])
def test_the_cli_refuses_bad_factors_in_one_line_and_writes_nothing(tmp_path: Path, flag: str, needle: str) -> None:
    _save(tmp_path / "photos", "bars.png", _bars(128, 128, bar_px=8))
    result = run("edgesr-data", "tiles", tmp_path / "photos", tmp_path / "out", "--rescale", flag)
    assert_refused(result, "edgesr-data", needle)
    assert not (tmp_path / "out").exists()
