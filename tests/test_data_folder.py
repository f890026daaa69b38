"""Folder datasets and LR caching (edgesr.data.folder). The scikit-image corpus is in
test_skimage_corpus.py."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
skimage_data = pytest.importorskip("skimage.data")
Image = pytest.importorskip("PIL.Image")

from edgesr.data import folder  # noqa: E402
from edgesr.data.degrade import imresize, lr_from_hr  # noqa: E402
from edgesr.data.folder import IMAGE_EXTENSIONS, find_images  # noqa: E402
from edgesr.data.patches import PatchParams, TrainPatchDataset, ValImageDataset  # noqa: E402
from edgesr.errors import ConfigError, DataError  # noqa: E402

SCALE = 4
PATCH = 16  # LR pixels; HR patches are 64x64


def _save(path: Path, image: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, **kwargs)
    return path


@pytest.fixture()
def photo_dir(tmp_path: Path) -> Path:
    """Small crops of real photos in a DIV2K-like tree, sizes not multiples of the scale."""
    root = tmp_path / "hr"
    _save(root / "0001.png", skimage_data.astronaut()[:130, :163])
    _save(root / "sub" / "0002.PNG", skimage_data.coffee()[100:199, 200:330])
    _save(root / "sub" / "deeper" / "0003.webp", skimage_data.chelsea()[:90, :101], lossless=True)
    (root / "notes.txt").write_text("not an image")
    _save(root / ".hidden" / "0004.png", skimage_data.rocket()[:80, :80])
    return root


def _hr8(dataset_hr: torch.Tensor) -> np.ndarray:
    """float CHW tensor in [0, 1] back to HxWx3 uint8 (exact for 8-bit data)."""
    return np.round(dataset_hr.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- scanning, reading


def test_find_images_recursive_case_insensitive(photo_dir: Path) -> None:
    names = [p.relative_to(photo_dir).as_posix() for p in find_images(photo_dir)]
    assert names == ["0001.png", "sub/0002.PNG", "sub/deeper/0003.webp"]  # no .txt, no hidden


def test_reads_gray_16bit_and_rgba(tmp_path: Path) -> None:
    base = skimage_data.astronaut()[:80, :80]
    gray16 = (base[..., 1].astype(np.uint16) * 257)
    _save(tmp_path / "d" / "gray16.png", gray16)
    _save(tmp_path / "d" / "rgba.png", np.dstack([base, np.full(base.shape[:2], 7, np.uint8)]))
    _save(tmp_path / "d" / "gray.jpg", base[..., 0], quality=95)
    _save(tmp_path / "d" / "image.tiff", base)
    ds = ValImageDataset(root=tmp_path / "d", scale=2, cache_dir=tmp_path / "cache")
    items = {ds[i]["name"]: _hr8(ds[i]["hr"]) for i in range(len(ds))}
    np.testing.assert_array_equal(items["gray16.png"], np.repeat(base[..., 1:2], 3, axis=2))
    np.testing.assert_array_equal(items["rgba.png"], base)
    np.testing.assert_array_equal(items["image.tiff"], base)
    assert items["gray.jpg"].shape == (80, 80, 3)


# --------------------------------------------------------------------------- training patches


def test_patches_are_aligned_with_the_degradation(photo_dir: Path, tmp_path: Path) -> None:
    ds = TrainPatchDataset(
        root=photo_dir, scale=SCALE, lr_patch_px=PATCH, cache_dir=tmp_path / "c", augment=False, repeat=3
    )
    assert len(ds) == 9
    for index in range(len(ds)):
        params = ds.patch_params(index)
        assert not (params.hflip or params.vflip or params.rot90)
        record = ds.records[params.image_index]
        source = np.asarray(Image.open(record.source).convert("RGB"))
        hr_full, lr_full = lr_from_hr(source, scale=SCALE)
        sample = ds[index]
        assert sample["lr"].shape == (3, PATCH, PATCH) and sample["lr"].dtype == torch.float32
        assert sample["hr"].shape == (3, PATCH * SCALE, PATCH * SCALE)
        assert 0.0 <= float(sample["lr"].min()) and float(sample["hr"].max()) <= 1.0
        t, lft = params.top, params.left
        lr = _hr8(sample["lr"])
        hr = _hr8(sample["hr"])
        np.testing.assert_array_equal(lr, lr_full[t : t + PATCH, lft : lft + PATCH])
        np.testing.assert_array_equal(
            hr, hr_full[t * SCALE : (t + PATCH) * SCALE, lft * SCALE : (lft + PATCH) * SCALE]
        )
        # The LR patch is the degraded HR patch: identical wherever the x4 kernel (2 LR px
        # each side) stays inside the patch.
        np.testing.assert_array_equal(imresize(hr, scale=1 / SCALE)[2:-2, 2:-2], lr[2:-2, 2:-2])


def _pillow_augment(image: np.ndarray, params) -> np.ndarray:  # noqa: ANN001 (PatchParams)
    """The expected augmentation, by Pillow (an independent oracle): mirror left-right, then
    top-bottom, then rotate 90 degrees counter-clockwise, each when its flag is set."""
    from PIL import Image

    im = Image.fromarray(image)
    for flag, op in ((params.hflip, Image.Transpose.FLIP_LEFT_RIGHT),
                     (params.vflip, Image.Transpose.FLIP_TOP_BOTTOM),
                     (params.rot90, Image.Transpose.ROTATE_90)):
        if flag:
            im = im.transpose(op)
    return np.asarray(im)


def test_flips_and_rotations_apply_to_both(photo_dir: Path, tmp_path: Path) -> None:
    kwargs = dict(root=photo_dir, scale=SCALE, lr_patch_px=PATCH, cache_dir=tmp_path / "c", repeat=12)
    plain = TrainPatchDataset(augment=False, **kwargs)
    augmented = TrainPatchDataset(augment=True, **kwargs)
    seen = set()
    for index in range(len(augmented)):
        params = augmented.patch_params(index)
        seen.add((params.hflip, params.vflip, params.rot90))
        base = plain.patch_params(index)
        assert (base.image_index, base.top, base.left) == (params.image_index, params.top, params.left)
        lr0, hr0 = (_hr8(t) for t in plain[index].values())
        sample = augmented[index]
        lr, hr = _hr8(sample["lr"]), _hr8(sample["hr"])
        np.testing.assert_array_equal(lr, _pillow_augment(lr0, params))
        np.testing.assert_array_equal(hr, _pillow_augment(hr0, params))
        # ...and the pair stays a degradation pair. A rotation swaps which axis MATLAB
        # resizes (and rounds to uint8) first, so allow one 8-bit level there.
        redegraded = imresize(hr, scale=1 / SCALE).astype(int)
        assert np.abs(redegraded[2:-2, 2:-2] - lr[2:-2, 2:-2].astype(int)).max() <= 1
    assert len(seen) == 8  # every flip/rotation combination occurs


def test_deterministic_per_seed_and_epoch(photo_dir: Path, tmp_path: Path) -> None:
    kwargs = dict(root=photo_dir, scale=SCALE, lr_patch_px=PATCH, cache_dir=tmp_path / "c")
    a, b, c = (TrainPatchDataset(seed=s, **kwargs) for s in (7, 7, 8))
    assert all(torch.equal(a[i]["hr"], b[i]["hr"]) for i in range(len(a)))
    assert [a.patch_params(i) for i in range(3)] != [c.patch_params(i) for i in range(3)]
    before = [a.patch_params(i) for i in range(3)]
    a.set_epoch(1)
    assert [a.patch_params(i) for i in range(3)] != before
    with pytest.raises(IndexError):
        a[len(a)]


def test_dataloader_with_two_workers(photo_dir: Path, tmp_path: Path) -> None:
    ds = TrainPatchDataset(root=photo_dir, scale=SCALE, lr_patch_px=PATCH, cache_dir=tmp_path / "c", repeat=4)
    restored = pickle.loads(pickle.dumps(ds))
    assert torch.equal(restored[5]["lr"], ds[5]["lr"])
    batches = {}
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=workers, shuffle=False)
        batches[workers] = list(loader)
    assert len(batches[2]) == 3
    assert batches[2][0]["lr"].shape == (4, 3, PATCH, PATCH)
    assert batches[2][0]["hr"].shape == (4, 3, PATCH * SCALE, PATCH * SCALE)
    for one, two in zip(batches[0], batches[2]):  # workers do not change the samples
        assert torch.equal(one["lr"], two["lr"]) and torch.equal(one["hr"], two["hr"])


# --------------------------------------------------------------------------- caching


def test_second_run_reads_the_cache(photo_dir: Path, tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    first = TrainPatchDataset(root=photo_dir, scale=SCALE, lr_patch_px=PATCH, cache_dir=cache)
    assert (first.report.computed, first.report.from_cache) == (3, 0)
    files = sorted(cache.rglob("*.npy"))
    assert len(files) == 6
    mtimes = [f.stat().st_mtime_ns for f in files]

    def no_recompute(*args, **kwargs):
        raise AssertionError("lr_from_hr called although the cache is valid")

    monkeypatch.setattr(folder, "lr_from_hr", no_recompute)
    second = TrainPatchDataset(root=photo_dir, scale=SCALE, lr_patch_px=PATCH, cache_dir=cache)
    assert (second.report.computed, second.report.from_cache) == (0, 3)
    assert [f.stat().st_mtime_ns for f in sorted(cache.rglob("*.npy"))] == mtimes
    assert torch.equal(first[1]["hr"], second[1]["hr"])
    monkeypatch.undo()

    # An edited image (new mtime) and another scale are computed again; the rest is reused.
    edited = photo_dir / "0001.png"
    stat = edited.stat()
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    third = TrainPatchDataset(root=photo_dir, scale=SCALE, lr_patch_px=PATCH, cache_dir=cache)
    assert (third.report.computed, third.report.from_cache) == (1, 2)
    other = ValImageDataset(root=photo_dir, scale=2, cache_dir=cache)
    assert (other.report.computed, other.report.from_cache) == (3, 0)


def test_validation_dataset_yields_whole_images(photo_dir: Path, tmp_path: Path) -> None:
    ds = ValImageDataset(root=photo_dir, scale=3, cache_dir=tmp_path / "c")
    assert [ds[i]["name"] for i in range(len(ds))] == ["0001.png", "sub/0002.PNG", "sub/deeper/0003.webp"]
    item = ds[1]
    source = np.asarray(Image.open(photo_dir / "sub" / "0002.PNG"))  # 99 x 130
    hr, lr = lr_from_hr(source, scale=3)
    assert item["hr"].shape == (3, 99, 129) and item["lr"].shape == (3, 33, 43)
    np.testing.assert_array_equal(_hr8(item["hr"]), hr)
    np.testing.assert_array_equal(_hr8(item["lr"]), lr)
    loader = torch.utils.data.DataLoader(ds, batch_size=1)
    assert [batch["name"][0] for batch in loader] == [ds[i]["name"] for i in range(len(ds))]


# --------------------------------------------------------------------------- errors


def test_empty_folder_names_the_extensions(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError) as info:
        TrainPatchDataset(root=tmp_path / "empty", scale=2, cache_dir=tmp_path / "c")
    message = str(info.value)
    assert "no images found" in message and all(ext in message for ext in IMAGE_EXTENSIONS)
    with pytest.raises(DataError, match="does not exist"):
        ValImageDataset(root=tmp_path / "missing", scale=2, cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match="is a file"):
        ValImageDataset(root=tmp_path / "empty" / "readme.txt", scale=2, cache_dir=tmp_path / "c")


def test_small_images_are_skipped_and_counted(tmp_path: Path, caplog) -> None:
    root = tmp_path / "hr"
    photo = skimage_data.astronaut()
    _save(root / "big.png", photo[:100, :100])
    _save(root / "small.png", photo[:63, :200])  # 63 < 64 HR rows: too small for a 16 px LR patch
    _save(root / "tiny.png", photo[:3, :3])  # smaller than the scale itself
    with caplog.at_level(logging.WARNING, logger="edgesr.data.folder"):
        ds = TrainPatchDataset(root=root, scale=SCALE, lr_patch_px=PATCH, cache_dir=tmp_path / "c")
    assert [r.name for r in ds.records] == ["big.png"]
    assert ds.report.skipped_small == ["small.png", "tiny.png"]
    assert "small.png" in caplog.text and "tiny.png" in caplog.text
    (root / "big.png").unlink()
    with pytest.raises(DataError, match="2 smaller than 64x64"):
        TrainPatchDataset(root=root, scale=SCALE, lr_patch_px=PATCH, cache_dir=tmp_path / "c")


def test_corrupt_files_are_skipped_and_counted(tmp_path: Path, caplog) -> None:
    root = tmp_path / "hr"
    good = _save(root / "good.png", skimage_data.coffee()[:80, :80])
    (root / "garbage.jpg").write_bytes(b"this is not a jpeg")
    (root / "truncated.png").write_bytes(good.read_bytes()[:200])
    with caplog.at_level(logging.WARNING, logger="edgesr.data.folder"):
        ds = TrainPatchDataset(root=root, scale=SCALE, lr_patch_px=PATCH, cache_dir=tmp_path / "c")
    assert [r.name for r in ds.records] == ["good.png"]
    assert ds.report.skipped_unreadable == ["garbage.jpg", "truncated.png"]
    assert "garbage.jpg" in caplog.text and "truncated.png" in caplog.text
    good.unlink()
    with pytest.raises(DataError, match="2 unreadable"):
        ValImageDataset(root=root, scale=SCALE, cache_dir=tmp_path / "c")


def test_unwritable_cache_is_a_clear_error(photo_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot write the LR cache"):
        ValImageDataset(root=photo_dir, scale=2, cache_dir=blocker)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"scale": 0}, "scale"),
        ({"scale": 2.5}, "scale"),
        ({"scale": 2, "lr_patch_px": 0}, "lr_patch_px"),
        ({"scale": 2, "repeat": 0}, "repeat"),
        ({"scale": 2, "seed": -1}, "seed"),
    ],
)
def test_bad_options(photo_dir: Path, tmp_path: Path, kwargs, text) -> None:
    with pytest.raises(ConfigError, match=text):
        TrainPatchDataset(root=photo_dir, cache_dir=tmp_path / "c", **kwargs)


def test_patch_params_is_public_and_frozen(photo_dir: Path, tmp_path: Path) -> None:
    ds = TrainPatchDataset(root=photo_dir, scale=SCALE, lr_patch_px=PATCH, cache_dir=tmp_path / "c")
    params = ds.patch_params(0)
    assert isinstance(params, PatchParams)
    with pytest.raises(AttributeError):
        params.top = 1  # type: ignore[misc]
