"""edgesr-data tiles: the most detailed tiles of a folder of photos.

Oracles are hand computations on images made of flat areas and stripes whose x4 area
average is known exactly: a left half 0 / right half 100 tile has LR rows [0, 100], so its
detail is (0 + 100) / 2 = 50; 4-px stripes of 0 and 200 average to LR columns 0, 200, 0, ...,
so every horizontal step is 200 and every vertical one 0: detail 100. 8-px bars of 0 and 200
average to LR columns 0, 0, 200, 200, ...: a 128-px tile has 32 LR columns, so 31 horizontal
neighbour pairs of which 15 step by 200, and no vertical step: detail (200 * 15 / 31 + 0) / 2 =
48.39. The pixels of a downscaled photo (``--rescale``) come from MATLAB-compatible ``imresize``,
checked against MATLAB's own values in tests/test_degrade.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from battery_util import assert_refused, run
from edgesr.data.degrade import imresize
from edgesr.data.detail_tiles import choose_tiles, tile_detail, write_detail_tiles
from edgesr.errors import ConfigError, DataError

BARS_DETAIL = (200 * 15 / 31 + 0) / 2  # a 128-px tile of 8-px bars, by hand (see above)


def _gray(values: np.ndarray) -> np.ndarray:
    return np.repeat(values.astype(np.uint8)[..., None], 3, axis=2)


def _stripes(height: int, width: int, *, high: int, bar_px: int = 4) -> np.ndarray:
    columns = (np.arange(width) // bar_px) % 2 * high  # bar_px at 0, bar_px at `high`
    return np.tile(columns, (height, 1))


def _bars(height: int, width: int) -> np.ndarray:
    return _gray(_stripes(height, width, high=200, bar_px=8))


def _half_flat_half_striped() -> np.ndarray:
    image = np.full((256, 512), 128)
    image[:, 256:] = _stripes(256, 256, high=200)
    return _gray(image)


def _save(folder: Path, name: str, rgb: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(folder / name)
    return folder / name


def _licensed_corpus(root: Path, photo: np.ndarray, licence: str) -> Path:
    """root/train/p.png with its row in root/LICENSES.md, as edgesr-data photos writes them."""
    _save(root / "train", "p.png", photo)
    (root / "LICENSES.md").write_text(
        "| split | file | source | licence | copyright holders |\n|---|---|---|---|---|\n"
        f"| train | train/p.png | a package | {licence} | A. Photographer |\n", encoding="utf-8")
    return root / "train"


def test_detail_is_the_mean_lr_gradient_over_both_axes() -> None:
    step = np.zeros((8, 8))
    step[:, 4:] = 100
    assert tile_detail(_gray(step), scale=4) == pytest.approx(50.0)
    assert tile_detail(_gray(_stripes(16, 16, high=200)), scale=4) == pytest.approx(100.0)
    assert tile_detail(_gray(np.full((16, 16), 77)), scale=4) == 0.0


def test_the_striped_half_is_chosen_and_ties_go_by_position(tmp_path: Path) -> None:
    _save(tmp_path / "photos", "a.png", _half_flat_half_striped())
    tiles, _ = choose_tiles(tmp_path / "photos", tile_px=128, count=4, per_image=10, scale=4)
    # Tiles (stride 64) wholly inside the stripes start at left 256, 320 or 384: detail 100.
    assert [(t.top, t.left) for t in tiles] == [(0, 256), (0, 320), (0, 384), (64, 256)]
    assert all(t.detail == pytest.approx(100.0) for t in tiles)


def test_photos_of_one_name_in_two_subfolders_give_tiles_of_two_names(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    _save(photos / "a", "p.png", _gray(_stripes(128, 128, high=200)))
    _save(photos / "b", "p.png", _gray(_stripes(128, 128, high=100)))
    tiles = write_detail_tiles(photos, tmp_path / "tiles", tile_px=128, count=2, per_image=1)
    assert sorted(t.name for t in tiles) == ["a__p-0-0.png", "b__p-0-0.png"]
    assert len(list((tmp_path / "tiles").glob("*.png"))) == 2


def test_the_cap_per_photo_leaves_room_for_the_others(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    _save(photos, "busy.png", _gray(_stripes(128, 256, high=200)))  # detail 100 everywhere
    _save(photos, "calm.png", _gray(_stripes(128, 256, high=100)))  # detail 50 everywhere
    tiles, _ = choose_tiles(photos, tile_px=128, count=5, per_image=2, scale=4)
    assert [(t.source.name, t.left) for t in tiles] == [("busy.png", 0), ("busy.png", 64),
                                                         ("calm.png", 0), ("calm.png", 64)]


def test_tiles_hold_the_photo_pixels_and_its_licence(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, size=(200, 300, 3), dtype=np.uint8)
    corpus = _licensed_corpus(tmp_path / "corpus", photo, "GPL-2+")
    tiles = write_detail_tiles(corpus, tmp_path / "tiles", tile_px=96, count=3, per_image=3, scale=4)
    for t in tiles:
        written = np.asarray(Image.open(tmp_path / "tiles" / t.name).convert("RGB"))
        np.testing.assert_array_equal(written, photo[t.top : t.top + 96, t.left : t.left + 96])
    licences = (tmp_path / "tiles" / "LICENSES.md").read_text(encoding="utf-8")
    assert licences.count("| a package | GPL-2+ | A. Photographer |") == 3


def test_a_folder_with_files_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    _save(tmp_path / "photos", "a.png", _half_flat_half_striped())
    mine = _save(tmp_path / "out", "mine.png", _gray(np.zeros((4, 4))))
    before = mine.read_bytes()
    result = run("edgesr-data", "tiles", tmp_path / "photos", tmp_path / "out")
    assert_refused(result, "edgesr-data", "not an empty folder")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mine.png"]
    assert mine.read_bytes() == before


def test_bad_sizes_are_refused(tmp_path: Path) -> None:
    _save(tmp_path / "photos", "a.png", _half_flat_half_striped())
    with pytest.raises(DataError, match="multiple of --scale"):
        choose_tiles(tmp_path / "photos", tile_px=130, count=1, per_image=1, scale=4)
    with pytest.raises(DataError, match="smaller than a 1024-px tile"):
        choose_tiles(tmp_path / "photos", tile_px=1024, count=1, per_image=1, scale=4)
    with pytest.raises(ConfigError, match="scale"):
        choose_tiles(tmp_path / "photos", tile_px=128, count=1, per_image=1, scale=0)
    (tmp_path / "empty").mkdir()  # photos are found in subfolders too, as edgesr-train finds them
    with pytest.raises(DataError, match="no photos"):
        choose_tiles(tmp_path / "empty", tile_px=128, count=1, per_image=1, scale=4)


# --rescale: tiles cut from each photo downscaled as well


def test_without_rescale_the_tiles_are_those_of_the_photo_as_it_is(tmp_path: Path) -> None:
    _save(tmp_path / "photos", "bars.png", _bars(256, 256))
    plain, _ = choose_tiles(tmp_path / "photos", tile_px=128, count=9, per_image=9, scale=4)
    same, _ = choose_tiles(tmp_path / "photos", tile_px=128, count=9, per_image=9, scale=4, rescales=[1])
    assert plain == same
    assert [t.name for t in plain[:2]] == ["bars-0-0.png", "bars-0-64.png"]  # ties go by position
    assert [t.detail for t in plain] == pytest.approx([BARS_DETAIL] * 9)
    assert all(t.rescale == 1 for t in plain)


def test_a_half_size_photo_holds_denser_edges_and_its_tiles_come_first(tmp_path: Path) -> None:
    _save(tmp_path / "photos", "bars.png", _bars(256, 512))
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
    _save(tmp_path / "photos", "bars.png", _bars(256, 512))
    tiles, _ = choose_tiles(tmp_path / "photos", tile_px=128, count=20, per_image=2, scale=4,
                            rescales=[1, 0.75, 0.5])
    assert len(tiles) == 2


def test_rescaled_tiles_hold_the_downscaled_pixels_and_say_so(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, size=(256, 320, 3), dtype=np.uint8)
    corpus = _licensed_corpus(tmp_path / "corpus", photo, "CC0-1.0")
    tiles = write_detail_tiles(corpus, tmp_path / "tiles", tile_px=64, count=200, per_image=200, scale=4,
                               rescales=[1, 0.75])
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
    _save(tmp_path / "photos", "bars.png", _bars(128, 128))
    with pytest.raises(DataError, match="distinct factors in"):
        choose_tiles(tmp_path / "photos", tile_px=64, count=1, per_image=1, scale=4, rescales=rescales)


@pytest.mark.parametrize(("flag", "needle"), [("1,x", "not a comma-separated list"), ("1,2", "distinct factors")])
def test_the_cli_refuses_bad_factors_in_one_line_and_writes_nothing(tmp_path: Path, flag: str, needle: str) -> None:
    _save(tmp_path / "photos", "bars.png", _bars(128, 128))
    result = run("edgesr-data", "tiles", tmp_path / "photos", tmp_path / "out", "--rescale", flag)
    assert_refused(result, "edgesr-data", needle)
    assert not (tmp_path / "out").exists()
