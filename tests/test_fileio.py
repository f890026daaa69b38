"""edgesr.fileio: the one atomic writer (no-clobber decided at commit time, atomic replace,
temp names within NAME_MAX) and the checks made before work starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgesr.errors import OutputError
from edgesr.fileio import (
    check_output_file,
    ensure_folder,
    name_max,
    temp_name_for,
    write_atomically,
    write_bytes_atomically,
)


def test_a_file_created_while_writing_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"

    def write_while_another_process_commits(tmp: str) -> None:
        Path(tmp).write_bytes(b"mine")
        target.write_bytes(b"theirs")  # the other process wins the race

    with pytest.raises(OutputError, match="already exists"):
        write_atomically(target, write_while_another_process_commits)
    assert target.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]  # temp file removed


def test_overwrite_replaces_and_a_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    link = tmp_path / "link.txt"
    link.symlink_to(victim.name)
    write_bytes_atomically(link, b"new", overwrite=True)
    assert victim.read_bytes() == b"keep me"
    assert not link.is_symlink() and link.read_bytes() == b"new"


def test_new_files_get_the_umask_mode_not_mkstemps_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_bytes_atomically(tmp_path / "m.bin", b"x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("name", ["n" * 250 + ".png", "é" * 125 + ".png", "short.png"])
def test_temp_names_fit_name_max_whatever_the_target(tmp_path: Path, name: str) -> None:
    limit = name_max(tmp_path)
    assert len(os.fsencode(name)) <= limit  # the target itself is legal
    temp = temp_name_for(tmp_path / name)
    assert len(os.fsencode(temp)) <= limit and temp.startswith(".") and temp.endswith(".tmp")
    assert write_bytes_atomically(tmp_path / name, b"ok").read_bytes() == b"ok"


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="no space left"):
        write_atomically(tmp_path / "x.bin", broken)
    assert list(tmp_path.iterdir()) == []


def test_checks_before_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "in.png"
    data.write_bytes(b"input")
    with pytest.raises(OutputError, match="never overwrites an input"):
        check_output_file(tmp_path / "." / "in.png", inputs=[data], overwrite=True)
    with pytest.raises(OutputError, match="already exists"):
        check_output_file(data, inputs=[], overwrite=False)
    with pytest.raises(OutputError, match="does not exist"):
        check_output_file(tmp_path / "no" / "x.csv", inputs=[data])
    with pytest.raises(OutputError, match="allows 255"):
        check_output_file(tmp_path / ("n" * 256), inputs=[])
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    with pytest.raises(OutputError, match="MB free"):
        check_output_file(tmp_path / "big.png", estimate_bytes=free * 2)
    assert check_output_file(tmp_path / "fine.png", inputs=[data], estimate_bytes=1) == tmp_path / "fine.png"


def test_ensure_folder_on_a_file_is_one_line(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_bytes(b"")
    with pytest.raises(OutputError, match="not a folder"):
        ensure_folder(taken, what="cache folder")
    with pytest.raises(OutputError):
        ensure_folder(taken / "sub", what="cache folder")
