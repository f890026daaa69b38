"""edgesr.trust, the one rule for what edgesr reads back from disk (issue 16, part 2).

Oracles: the file system itself (``os.lstat``: owner, mode, link) and ``hashlib`` for the
recorded digests. Folders and files of another owner are made by ``chown`` as root (skipped
otherwise); root bypasses permission checks but not these owner checks.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

import pytest

from edgesr import trust
from edgesr.errors import TrustError
from trust_util import second_user


def _entry(folder: Path, data: bytes = b"graph bytes") -> Path:
    folder.mkdir(mode=0o700, exist_ok=True)
    return trust.write_entry(folder / "m.onnx", lambda tmp: Path(tmp).write_bytes(data))


def test_an_entry_written_by_the_rule_is_private_and_its_digest_is_its_sha256(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        entry = _entry(tmp_path / "c")
    finally:
        os.umask(old)
    digest = trust.digest_path(entry)
    assert digest.read_text().strip() == hashlib.sha256(b"graph bytes").hexdigest()
    assert {stat.S_IMODE(os.lstat(p).st_mode) for p in (entry, digest)} == {0o600}
    assert trust.verified_entry(entry, what="export")


@pytest.mark.parametrize(("damage", "needle"), [
    (lambda e: e.write_bytes(b"graph bytez"), "does not match its recorded SHA-256"),
    (lambda e: e.chmod(0o620), "writable by group or others (mode 0620)"),
    (lambda e: e.chmod(0o606), "writable by group or others (mode 0606)"),
    (lambda e: trust.digest_path(e).unlink(), "has no valid recorded SHA-256"),
    (lambda e: trust.digest_path(e).chmod(0o666), "has no valid recorded SHA-256"),
    (lambda e: trust.digest_path(e).write_text("0" * 63), "has no valid recorded SHA-256"),
])
def test_a_damaged_entry_is_not_used(damage, needle: str, tmp_path: Path,
                                     caplog: pytest.LogCaptureFixture) -> None:
    entry = _entry(tmp_path / "c")
    damage(entry)
    with caplog.at_level(logging.WARNING, logger="edgesr.trust"):
        assert not trust.verified_entry(entry, what="export")
    (line,) = caplog.messages
    assert needle in line and "rebuilding it" in line


def test_a_symlinked_entry_is_not_used_even_with_the_right_bytes(tmp_path: Path) -> None:
    entry = _entry(tmp_path / "c")
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(entry.read_bytes())
    entry.unlink()
    entry.symlink_to(outside)
    assert trust.entry_problem(entry) == "is a symbolic link"


def test_an_entry_of_another_owner_is_not_used(tmp_path: Path) -> None:
    other = second_user()
    entry = _entry(tmp_path / "c")
    os.chown(entry, other.pw_uid, other.pw_gid)
    assert trust.entry_problem(entry) == f"is owned by uid {other.pw_uid}, not by this user (uid 0)"


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_cache_folder_others_can_write_is_swapped_for_a_private_one(mode: int, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="edgesr.trust"):
        used = trust.cache_folder(shared, what="ONNX export cache")
    assert used != shared and used.is_dir()
    st = os.lstat(used)
    assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o700
    (line,) = caplog.messages
    assert f"mode {mode & 0o7777:04o}" in line and str(used) in line


def test_the_cache_root_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    root.mkdir()
    root.chmod(0o777)
    monkeypatch.setenv("EDGESR_CACHE_DIR", str(root))
    assert trust.default_cache_folder("onnx", what="ONNX export cache") != root / "onnx"
    root.chmod(0o700)
    assert trust.default_cache_folder("onnx", what="ONNX export cache") == root / "onnx"


def test_a_symlinked_cache_root_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "theirs"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    monkeypatch.setenv("EDGESR_CACHE_DIR", str(tmp_path / "link"))
    assert not str(trust.default_cache_folder("onnx", what="cache")).startswith(str(tmp_path))


def test_a_folder_of_another_owner_is_refused_with_the_fix(tmp_path: Path) -> None:
    other = second_user()
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, other.pw_uid, other.pw_gid)
    with pytest.raises(TrustError, match=f"owned by uid {other.pw_uid}.*chown it to yourself"):
        trust.require_own_folder(theirs, what="--out-dir", why="training resumes from there")


def test_a_tool_cache_keeps_sealed_entries_and_removes_the_rest(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    folder = trust.checked_tool_cache(tmp_path / "ov", what="OpenVINO model cache")
    (folder / "a.blob").write_bytes(b"compiled a")
    (folder / "a.blob").chmod(0o600)
    trust.seal_tool_cache(folder)
    assert trust.checked_tool_cache(folder, what="OpenVINO model cache") == folder
    assert (folder / "a.blob").read_bytes() == b"compiled a" and not caplog.messages
    (folder / "b.blob").write_bytes(b"planted, never sealed")
    (folder / "b.blob").chmod(0o600)
    (folder / "a.blob").write_bytes(b"compiled A")  # edited after sealing
    with caplog.at_level(logging.WARNING, logger="edgesr.trust"):
        trust.checked_tool_cache(folder, what="OpenVINO model cache")
    assert sorted(p.name for p in folder.iterdir()) == [trust.TOOL_MANIFEST]
    (line,) = caplog.messages
    assert "a.blob" in line and "b.blob" in line


def test_the_ort_tensorrt_provider_cache_is_checked_before_the_provider_sees_it(tmp_path: Path) -> None:
    # The provider options are built on any machine; only the session needs the GPU.
    from edgesr.runtime.engines.ort import TENSORRT_EP, OrtOptions, _provider_options

    cache = tmp_path / "ort-trt"
    cache.mkdir(mode=0o700)
    planted = cache / "model_ctx.engine"
    planted.write_bytes(b"an engine nobody sealed")
    planted.chmod(0o666)
    options = _provider_options(TENSORRT_EP, OrtOptions(providers=("trt",), trt_cache_dir=cache))
    assert options["trt_engine_cache_path"] == str(cache) and not planted.exists()
    cache.chmod(0o777)
    options = _provider_options(TENSORRT_EP, OrtOptions(providers=("trt",), trt_cache_dir=cache))
    used = Path(options["trt_engine_cache_path"])
    assert used != cache and stat.S_IMODE(os.lstat(used).st_mode) == 0o700


def test_a_new_out_dir_is_made_without_group_or_world_write_whatever_the_umask(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from edgesr.train.checkpoint import prepare_out_dir

    old = os.umask(0o002)
    try:
        out = prepare_out_dir(tmp_path / "run")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.lstat(out).st_mode) & trust.UNSAFE_BITS == 0
    out.chmod(0o770)
    with pytest.raises(TrustError, match="writable by group or others"):
        prepare_out_dir(out)
