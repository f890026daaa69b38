"""TensorRT engine cache: keys, manifests, tamper checks, atomic writes, profiles (no GPU)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from edgesr.errors import ConfigError, ModelFileError
from edgesr.runtime import trt_cache
from edgesr.runtime.trt_cache import (
    EngineKey,
    OptimizationProfile,
    atomic_write_bytes,
    cache_root,
    engine_paths,
    file_sha256,
    load_cached_engine_bytes,
    load_timing_cache_bytes,
    profile_from_tiling,
    read_manifest,
    save_engine,
    save_timing_cache_bytes,
    timing_cache_path,
)

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
    canonical = json.dumps(key.as_dict(), sort_keys=True, separators=(",", ":"))
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
    assert "refusing to load" in message and "executable code" in message and "Rebuilding" in message
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


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_replaces_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(trt_cache.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


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

    monkeypatch.setattr(trt_cache.os, "replace", replace_engine_only)
    with pytest.raises(KeyboardInterrupt):
        save_engine(key, ENGINE + b"new build", root=tmp_path)
    monkeypatch.undo()
    # the old manifest was removed before the new engine landed: nothing vouches for it
    assert load_cached_engine_bytes(key, root=tmp_path) is None


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    data = os.urandom(3 * 1024 * 1024 + 7)
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    with pytest.raises(ModelFileError, match="cannot read"):
        file_sha256(tmp_path / "missing.onnx")


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
