"""The scikit-image corpus (edgesr.data.skimage_photos): the photos load without a network,
the train/val split is disjoint, and the corpus is written to disk unchanged."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
skimage_data = pytest.importorskip("skimage.data")
Image = pytest.importorskip("PIL.Image")

from edgesr.data.patches import ValImageDataset  # noqa: E402
from edgesr.data.skimage_photos import (  # noqa: E402
    SKIMAGE_TRAIN,
    SKIMAGE_VAL,
    skimage_photos,
    write_skimage_corpus,
)
from edgesr.errors import ConfigError  # noqa: E402


@pytest.fixture()
def no_network(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_skimage_photos_load_offline(no_network) -> None:
    photos = skimage_photos()
    names = [name for name, _ in photos]
    assert names == sorted(SKIMAGE_TRAIN + SKIMAGE_VAL)
    assert not set(SKIMAGE_TRAIN) & set(SKIMAGE_VAL)
    for name, image in photos:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        assert min(image.shape[:2]) >= 300, name


def test_write_skimage_corpus(tmp_path: Path, no_network) -> None:
    written = write_skimage_corpus(tmp_path / "corpus")
    assert [p.name for p in written["train"]] == [f"{n}.png" for n in SKIMAGE_TRAIN]
    assert [p.name for p in written["val"]] == [f"{n}.png" for n in SKIMAGE_VAL]
    assert sorted(p.name for p in (tmp_path / "corpus" / "val").iterdir()) == [f"{n}.png" for n in SKIMAGE_VAL]
    chelsea = np.asarray(Image.open(tmp_path / "corpus" / "val" / "chelsea.png"))
    np.testing.assert_array_equal(chelsea, skimage_data.chelsea())
    mtimes = {p: p.stat().st_mtime_ns for p in written["train"] + written["val"]}
    again = write_skimage_corpus(tmp_path / "corpus", split="val")  # unchanged files stay
    assert list(again) == ["val"]
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in again["val"])
    ds = ValImageDataset(root=tmp_path / "corpus" / "val", scale=4, cache_dir=tmp_path / "c")
    assert [ds[i]["name"] for i in range(len(ds))] == [f"{n}.png" for n in SKIMAGE_VAL]
    with pytest.raises(ConfigError, match="'test'"):
        write_skimage_corpus(tmp_path / "corpus", split="test")
