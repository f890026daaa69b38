"""The LR-pairs training cache under edgesr's one trust rule (issue 16, part 2).

Another user's entries in a shared (1777) or symlinked cache, and a same-user entry whose
bytes changed after they were written, are never used: one warning line, the pair rebuilt
(privately when the folder is refused), and the arrays the loader then reads are those of a
clean run. The oracle: the arrays of a first run in a private cache; a planted LR of another
value shows the check can fail.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from edgesr import trust
from edgesr.data import folder, pair_cache
from trust_util import second_user

SCALE = 2


@pytest.fixture()
def hr_dir(tmp_path: Path) -> Path:
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    root = tmp_path / "hr"
    root.mkdir()
    Image.fromarray(skdata.astronaut()[100:180, 180:260]).save(root / "a.png")
    Image.fromarray(skdata.chelsea()[60:140, 100:180]).save(root / "b.png")
    return root


def _arrays(records: list[folder.PairRecord]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {r.name: (np.load(r.hr_path), np.load(r.lr_path)) for r in records}


@pytest.fixture()
def clean(hr_dir: Path, tmp_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    records, report = folder.prepare_pairs(hr_dir, scale=SCALE, cache_dir=tmp_path / "clean")
    assert report.computed == 2
    return _arrays(records)


def _plant(cache_root: Path, hr_dir: Path, *, owner: int) -> list[Path]:
    """Entries with the right names and matching digests but a black LR, owned by ``owner``."""
    planted = []
    scale_folder = cache_root / f"x{SCALE}"
    scale_folder.mkdir(parents=True, exist_ok=True)
    for source in sorted(hr_dir.iterdir()):
        hr_path, lr_path = pair_cache.cache_paths(source, SCALE, scale_folder)
        for path, shape in ((hr_path, (80, 80, 3)), (lr_path, (40, 40, 3))):
            with open(path, "wb") as handle:
                np.save(handle, np.zeros(shape, np.uint8))
            trust.record_digest(path)
            for made in (path, trust.digest_path(path)):
                made.chmod(0o666)
                os.chown(made, owner, owner)
            planted.append(path)
    return planted


def _assert_clean(records: list[folder.PairRecord], clean: dict, planted_root: Path) -> None:
    assert all(not r.lr_path.startswith(str(planted_root)) for r in records)
    for name, (hr, lr) in _arrays(records).items():
        np.testing.assert_array_equal(hr, clean[name][0])
        np.testing.assert_array_equal(lr, clean[name][1])
        assert lr.any()  # a black plant would differ


def test_entries_are_private_and_carry_their_digest(hr_dir: Path, tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        records, _ = folder.prepare_pairs(hr_dir, scale=SCALE, cache_dir=tmp_path / "c")
    finally:
        os.umask(old)
    for record in records:
        for path in (Path(record.hr_path), Path(record.lr_path)):
            assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
            assert trust.entry_problem(path) == ""
    assert stat.S_IMODE(os.lstat(tmp_path / "c" / f"x{SCALE}").st_mode) == 0o700


def test_a_same_user_entry_changed_after_writing_is_rebuilt(hr_dir: Path, clean: dict, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "c"
    records, _ = folder.prepare_pairs(hr_dir, scale=SCALE, cache_dir=cache)
    for record in records:  # private mode, valid .npy, other values: only the digest can tell
        with open(record.lr_path, "wb") as handle:
            np.save(handle, np.zeros((40, 40, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger="edgesr.data.folder"):
        again, report = folder.prepare_pairs(hr_dir, scale=SCALE, cache_dir=cache)
    assert (report.computed, report.from_cache) == (2, 0)
    (line,) = caplog.messages
    assert "not using 2 cached LR pair file(s)" in line and "does not match its recorded SHA-256" in line
    _assert_clean(again, clean, tmp_path / "nowhere")


def test_another_users_plant_in_a_shared_cache_root_is_not_used(hr_dir: Path, clean: dict, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    other = second_user()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    planted = _plant(shared / "pairs", hr_dir, owner=other.pw_uid)
    before = {p: p.read_bytes() for p in planted}
    monkeypatch.setenv("EDGESR_CACHE_DIR", str(shared))
    with caplog.at_level(logging.WARNING):
        records, report = folder.prepare_pairs(hr_dir, scale=SCALE)  # the default cache root
    assert report.computed == 2
    (line,) = caplog.messages
    assert "not using the LR pairs cache" in line and "mode 1777" in line
    _assert_clean(records, clean, shared)
    assert {p: p.read_bytes() for p in planted} == before  # their files are left alone


def test_a_cache_dir_symlinked_to_someone_elses_folder_is_not_used(hr_dir: Path, clean: dict, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    other = second_user()
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    _plant(theirs, hr_dir, owner=other.pw_uid)
    for path in (theirs, theirs / f"x{SCALE}"):
        os.chown(path, other.pw_uid, other.pw_gid)
    (tmp_path / "link").symlink_to(theirs)
    with caplog.at_level(logging.WARNING):
        records, _ = folder.prepare_pairs(hr_dir, scale=SCALE, cache_dir=tmp_path / "link")
    (line,) = caplog.messages
    assert "is a symbolic link" in line
    _assert_clean(records, clean, theirs)
