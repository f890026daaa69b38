"""TensorRT engine cache: keys, paths, manifests, hash checks and interrupted writes (no GPU).
Who may write it is in test_trt_cache_trust.py, optimisation profiles in test_trt_profile.py.

Real files in pytest's temporary folders."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from edgesr.errors import ConfigError, ModelFileError
from edgesr import fileio
from edgesr.runtime.engines.trt import cache as trt_cache
from edgesr.runtime.engines.trt.cache import (
    cache_root,
    engine_paths,
    load_cached_engine_bytes,
    load_timing_cache_bytes,
    read_manifest,
    save_engine,
    save_timing_cache_bytes,
    timing_cache_path,
)
from edgesr.runtime.engines.trt.profile import OptimizationProfile

from trt_cache_util import ENGINE, make_key


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
