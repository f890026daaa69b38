"""Who may write the TensorRT engine cache (issue 9's trust rule): new files are private
whatever the umask; a root that others can write, that someone else owns or that is a link is
refused; an entry that others could write or that is a link is not loaded; the timing cache is
hashed. Real files and real modes in pytest's temporary folders (no GPU)."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

import pytest

from edgesr.errors import ConfigError
from edgesr.runtime.engines.trt import cache as trt_cache
from edgesr.runtime.engines.trt.cache import (
    engine_paths,
    load_cached_engine_bytes,
    load_timing_cache_bytes,
    save_engine,
    save_timing_cache_bytes,
    timing_cache_path,
)

from trt_cache_util import ENGINE, make_key


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_new_cache_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)  # a umask that would make group-writable files
    try:
        key = make_key()
        save_engine(key, ENGINE, root=tmp_path / "trt")
        timing = timing_cache_path(root=tmp_path / "trt", trt_version="10.13", gpu_name="g", compute_capability="8.7")
        save_timing_cache_bytes(timing, b"timings")
    finally:
        os.umask(old)
    engine, manifest = engine_paths(key, root=tmp_path / "trt")
    assert {_mode(p) for p in (engine, manifest, timing, timing.with_name(timing.name + ".sha256"))} == {0o600}
    assert {_mode(p) for p in (tmp_path / "trt", engine.parent, timing.parent)} == {0o700}
    assert load_cached_engine_bytes(key, root=tmp_path / "trt") == ENGINE


@pytest.mark.parametrize("mode", [0o770, 0o757, 0o777])
def test_a_cache_root_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    root = tmp_path / "trt"
    root.mkdir()
    root.chmod(mode)
    with pytest.raises(ConfigError, match=f"writable by group or others \\(mode 0{mode:o}\\).*chmod 700"):
        load_cached_engine_bytes(make_key(), root=root)
    with pytest.raises(ConfigError, match="writable by group or others"):
        save_engine(make_key(), ENGINE, root=root)
    timing = timing_cache_path(root=root, trt_version="10", gpu_name="g", compute_capability="8.7")
    timing.parent.mkdir()
    timing.parent.chmod(0o777)
    with pytest.raises(ConfigError, match="writable by group or others"):
        load_timing_cache_bytes(timing)


def test_a_cache_root_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # as root: give a real folder to another uid
        root = tmp_path / "trt"
        root.mkdir(mode=0o700)
        os.chown(root, 4242, 4242)
        owner = 4242
    else:  # otherwise a real folder root owns and nobody else can write
        root, owner = Path("/usr/share"), os.stat("/usr/share").st_uid
        assert owner != os.geteuid()
    with pytest.raises(ConfigError, match=f"owned by uid {owner}, not by this user"):
        load_cached_engine_bytes(make_key(), root=root)


def test_a_symlinked_cache_root_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    (tmp_path / "trt").symlink_to(real)
    with pytest.raises(ConfigError, match="symbolic link"):
        load_cached_engine_bytes(make_key(), root=tmp_path / "trt")


@pytest.mark.parametrize("which", ["engine", "manifest"])
def test_an_entry_others_could_write_is_not_loaded(tmp_path: Path, which: str, caplog: pytest.LogCaptureFixture) -> None:
    key = make_key()
    save_engine(key, ENGINE, root=tmp_path)
    entry = dict(zip(("engine", "manifest"), engine_paths(key, root=tmp_path)))[which]
    entry.chmod(0o666)  # hashes still match: only the mode is wrong
    with caplog.at_level(logging.WARNING, logger=trt_cache.__name__):
        assert load_cached_engine_bytes(key, root=tmp_path) is None
    assert "writable by group or others (mode 0666)" in caplog.text
    save_engine(key, ENGINE, root=tmp_path)  # the rebuild replaces it with a private file
    assert _mode(entry) == 0o600 and load_cached_engine_bytes(key, root=tmp_path) == ENGINE


def test_a_symlinked_engine_is_not_loaded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = make_key()
    save_engine(key, ENGINE, root=tmp_path)
    engine, _ = engine_paths(key, root=tmp_path)
    outside = tmp_path / "outside.engine"
    outside.write_bytes(ENGINE)  # same bytes, so only the link itself is wrong
    outside.chmod(0o600)
    engine.unlink()
    engine.symlink_to(outside)
    with caplog.at_level(logging.WARNING, logger=trt_cache.__name__):
        assert load_cached_engine_bytes(key, root=tmp_path) is None
    assert "symbolic link" in caplog.text


def test_timing_cache_is_hashed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = timing_cache_path(root=tmp_path, trt_version="10.13.0.35", gpu_name="Orin", compute_capability="8.7")
    save_timing_cache_bytes(path, b"timings v1")
    digest = path.with_name(path.name + ".sha256")
    assert digest.read_text().strip() == hashlib.sha256(b"timings v1").hexdigest()
    assert load_timing_cache_bytes(path) == b"timings v1"
    path.write_bytes(b"timings v2")  # edited behind the cache's back
    with caplog.at_level(logging.WARNING, logger=trt_cache.__name__):
        assert load_timing_cache_bytes(path) == b""
    assert "does not match" in caplog.text
    path.write_bytes(b"timings v1")
    digest.unlink()  # no recorded hash: not used
    assert load_timing_cache_bytes(path) == b""
    save_timing_cache_bytes(path, b"timings v1")
    digest.chmod(0o646)  # a digest others could rewrite vouches for nothing
    assert load_timing_cache_bytes(path) == b""
