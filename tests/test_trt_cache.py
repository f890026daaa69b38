"""TensorRT engine cache: keys, manifests, hash checks, who may write it, profiles (no GPU).

Real files and real modes in pytest's temporary folders."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from edgesr.errors import ConfigError, ModelFileError
from edgesr import fileio
from edgesr.runtime.engines.trt import cache as trt_cache
from edgesr.runtime.engines.trt.cache import (
    EngineKey,
    cache_root,
    engine_paths,
    load_cached_engine_bytes,
    load_timing_cache_bytes,
    read_manifest,
    save_engine,
    save_timing_cache_bytes,
    timing_cache_path,
)
from edgesr.runtime.engines.trt.profile import OptimizationProfile, profile_from_tiling

PROFILE = OptimizationProfile(min=(1, 3, 16, 16), opt=(1, 3, 288, 288), max=(1, 3, 288, 288))
ENGINE = b"\x7fTRT-engine-bytes" * 64


def make_key(**changes: object) -> EngineKey:
    fields: dict[str, object] = dict(
        onnx_sha256="a" * 64,
        trt_version="10.13.0.35",
        gpu_name="NVIDIA Jetson AGX Orin",
        compute_capability="8.7",
        precision="fp16",
        profile=PROFILE,
        plugin_version="edgesr::DynamicSnakeConv/v1/aot/triton-3.9.0",
        edgesr_version="0.1.0",
        builder={"workspace_bytes": str(1 << 30)},
    )
    fields.update(changes)
    return EngineKey(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": "b" * 64},
        {"trt_version": "11.0.0.1"},
        {"gpu_name": "NVIDIA GeForce RTX 4090"},
        {"compute_capability": "8.9"},
        {"precision": "fp32"},
        {"profile": OptimizationProfile(min=(1, 3, 16, 16), opt=(1, 3, 256, 256), max=(1, 3, 288, 288))},
        {"profile": OptimizationProfile(min=(1, 3, 16, 16), opt=(1, 3, 288, 288), max=(2, 3, 288, 288))},
        {"plugin_version": ""},
        {"plugin_version": "edgesr::DynamicSnakeConv/v1/jit/triton-3.9.0"},
        {"edgesr_version": "0.2.0"},
        {"builder": {"workspace_bytes": str(1 << 28)}},
    ],
    ids=lambda c: next(iter(c)),
)
def test_key_digest_changes_with_every_field(change: dict[str, object]) -> None:
    base = make_key()
    assert make_key().digest() == base.digest()  # deterministic
    changed = make_key(**change)
    assert changed.digest() != base.digest()
    assert engine_paths(changed, root=Path("/c"))[0] != engine_paths(base, root=Path("/c"))[0]


def test_key_digest_is_sha256_of_canonical_json() -> None:
    key = make_key(builder={"b": "2", "a": "1"})
    canonical = (  # written out by hand: sorted keys, no spaces
        '{"builder":{"a":"1","b":"2"},"compute_capability":"8.7","edgesr_version":"0.1.0",'
        '"gpu_name":"NVIDIA Jetson AGX Orin","onnx_sha256":"' + "a" * 64 + '","plugin_version":'
        '"edgesr::DynamicSnakeConv/v1/aot/triton-3.9.0","precision":"fp16","profile":{"max":'
        '[1,3,288,288],"min":[1,3,16,16],"opt":[1,3,288,288]},"trt_version":"10.13.0.35"}'
    )
    assert key.digest() == hashlib.sha256(canonical.encode()).hexdigest()
    assert make_key(builder={"a": "1", "b": "2"}).digest() == key.digest()


def test_key_rejects_bad_fields() -> None:
    with pytest.raises(ConfigError, match="precision"):
        make_key(precision="int8")
    with pytest.raises(ConfigError, match="onnx_sha256"):
        make_key(onnx_sha256="not-a-hash")


# --------------------------------------------------------------------------- paths


def test_cache_root_explicit_env_and_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cache_root(tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.setenv("EDGESR_CACHE_DIR", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env" / "trt"
    monkeypatch.delenv("EDGESR_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "edgesr" / "trt"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the one cache root of edgesr
    assert cache_root() == tmp_path / "xdg" / "edgesr" / "trt"


def test_timing_cache_path_per_trt_version_and_gpu(tmp_path: Path) -> None:
    a = timing_cache_path(root=tmp_path, trt_version="10.13.0.35", gpu_name="NVIDIA Orin", compute_capability="8.7")
    b = timing_cache_path(root=tmp_path, trt_version="11.0.0.1", gpu_name="NVIDIA Orin", compute_capability="8.7")
    c = timing_cache_path(root=tmp_path, trt_version="10.13.0.35", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
    assert len({a, b, c}) == 3
    assert a.parent == tmp_path / "timing" and a.suffix == ".cache"
    assert " " not in a.name and "/" not in a.name
    assert load_timing_cache_bytes(a) == b""
    save_timing_cache_bytes(a, b"timings")
    assert load_timing_cache_bytes(a) == b"timings"
    save_timing_cache_bytes(b, b"")  # nothing to save: no file
    assert not b.exists()


# --------------------------------------------------------------------------- manifest round trip


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    key = make_key()
    path = save_engine(key, ENGINE, root=tmp_path)
    engine_path, manifest_path = engine_paths(key, root=tmp_path)
    assert path == engine_path and engine_path.read_bytes() == ENGINE
    manifest = read_manifest(manifest_path)
    assert manifest is not None
    assert manifest["key"] == key.as_dict()
    assert manifest["key_sha256"] == key.digest()
    assert manifest["engine_sha256"] == hashlib.sha256(ENGINE).hexdigest()
    assert manifest["engine_bytes"] == len(ENGINE)
    assert load_cached_engine_bytes(key, root=tmp_path) == ENGINE
    # another key finds nothing
    assert load_cached_engine_bytes(make_key(precision="fp32"), root=tmp_path) is None


def test_missing_manifest_or_foreign_engine_is_not_loaded(tmp_path: Path) -> None:
    key = make_key()
    assert load_cached_engine_bytes(key, root=tmp_path) is None
    engine_path, _ = engine_paths(key, root=tmp_path)
    engine_path.parent.mkdir(parents=True)
    engine_path.write_bytes(ENGINE)  # an engine this tool did not build (no manifest)
    assert load_cached_engine_bytes(key, root=tmp_path) is None


def test_tampered_engine_is_refused_then_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = make_key()
    save_engine(key, ENGINE, root=tmp_path)
    engine_path, _ = engine_paths(key, root=tmp_path)
    tampered = bytearray(ENGINE)
    tampered[100] ^= 0xFF
    engine_path.write_bytes(bytes(tampered))
    with caplog.at_level(logging.WARNING, logger=trt_cache.__name__):
        assert load_cached_engine_bytes(key, root=tmp_path) is None
    message = caplog.text
    assert "refusing TensorRT engine" in message and "does not match" in message and "rebuilding" in message
    # truncated file: refused too
    engine_path.write_bytes(ENGINE[:10])
    assert load_cached_engine_bytes(key, root=tmp_path) is None
    # the rebuild overwrites both files and loads again
    save_engine(key, ENGINE, root=tmp_path)
    assert load_cached_engine_bytes(key, root=tmp_path) == ENGINE


def test_manifest_of_another_key_or_broken_manifest_is_ignored(tmp_path: Path) -> None:
    key_a, key_b = make_key(), make_key(gpu_name="other GPU")
    save_engine(key_a, ENGINE, root=tmp_path)
    a_engine, a_manifest = engine_paths(key_a, root=tmp_path)
    b_engine, b_manifest = engine_paths(key_b, root=tmp_path)
    b_engine.write_bytes(a_engine.read_bytes())
    b_manifest.write_bytes(a_manifest.read_bytes())  # a manifest vouching for another key
    assert load_cached_engine_bytes(key_b, root=tmp_path) is None
    a_manifest.write_text("{not json", encoding="utf-8")
    assert load_cached_engine_bytes(key_a, root=tmp_path) is None
    a_manifest.write_text("[1, 2]", encoding="utf-8")
    assert load_cached_engine_bytes(key_a, root=tmp_path) is None
    a_manifest.write_bytes(b'{"format": "\xff"}')  # not UTF-8: rebuilt, not a traceback
    assert load_cached_engine_bytes(key_a, root=tmp_path) is None
    manifest = {"format": trt_cache.MANIFEST_FORMAT, "key": key_a.as_dict(), "engine_sha256": "zz"}
    a_manifest.write_text(json.dumps(manifest), encoding="utf-8")
    assert load_cached_engine_bytes(key_a, root=tmp_path) is None
    a_engine.unlink()
    save_engine(key_a, ENGINE, root=tmp_path)
    a_engine.unlink()  # manifest without its engine
    assert load_cached_engine_bytes(key_a, root=tmp_path) is None


def test_empty_engine_is_not_cached(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="empty"):
        save_engine(make_key(), b"", root=tmp_path)


# --------------------------------------------------------------------------- interrupted writes


def test_interrupted_save_leaves_nothing_loadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = make_key()
    save_engine(key, ENGINE, root=tmp_path)
    calls = {"n": 0}
    real_replace = os.replace

    def replace_engine_only(src: str, dst: str) -> None:  # the manifest write "crashes"
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", replace_engine_only)  # the atomic writer's rename
    with pytest.raises(KeyboardInterrupt):
        save_engine(key, ENGINE + b"new build", root=tmp_path)
    monkeypatch.undo()
    # the old manifest was removed before the new engine landed: nothing vouches for it
    assert load_cached_engine_bytes(key, root=tmp_path) is None


# --------------------------------------------------------------------------- profiles


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


# --------------------------------------------------------------------------- who may write (issue 9)


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
