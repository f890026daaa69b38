"""The trust rule under processes that share a cache or an --out-dir (the ranks of one
torchrun job, two trainings on one machine).

Regression: torchrun's two ranks made the same LR-pairs cache entries at once; one rank removed
the digest file that the other was about to chmod, and the training failed with "cannot write
the LR cache". On another run the rank that found --out-dir just made by its peer (umask 002,
mode 0o775 until that peer's chmod) refused it as group-writable. Each worker here repeats the
racy step many times behind a barrier, so the old code failed within a few hundred rounds.
Oracles: the exceptions the workers saw, ``os.lstat`` and ``hashlib``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import stat
import time
from pathlib import Path

import pytest

from edgesr import trust

_WORKERS = 3
_ROUNDS = 150
_DATA = b"the same cached bytes, as two ranks make them" * 64


def _jitter() -> None:
    # The ranks of one job start their steps a few hundred microseconds apart, not in lockstep.
    time.sleep(random.uniform(0, 0.0005))


def _write_same_entry(folder: str, barrier, failures) -> None:
    for _ in range(_ROUNDS):
        barrier.wait()
        _jitter()
        try:
            trust.write_entry(Path(folder) / "pair.npy", lambda tmp: Path(tmp).write_bytes(_DATA))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever a worker met
            failures.append(f"{type(exc).__name__}: {exc}")


def _prepare_same_out_dirs(base: str, barrier, failures) -> None:
    from edgesr.train.checkpoint import prepare_out_dir

    os.umask(0o002)  # a group-writable umask, common for shared workstations
    for index in range(_ROUNDS):
        barrier.wait()
        _jitter()
        try:
            prepare_out_dir(Path(base) / f"run{index}")
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{type(exc).__name__}: {exc}")


def _race(target, folder: Path) -> list[str]:
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    with context.Manager() as manager:
        barrier, failures = manager.Barrier(_WORKERS), manager.list()
        workers = [context.Process(target=target, args=(str(folder), barrier, failures))
                   for _ in range(_WORKERS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=240)
        assert [worker.exitcode for worker in workers] == [0] * _WORKERS
        return list(failures)


def test_processes_writing_the_same_cache_entry_all_succeed_and_leave_it_verified(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    assert _race(_write_same_entry, folder) == []
    entry = folder / "pair.npy"
    assert trust.digest_path(entry).read_text().strip() == hashlib.sha256(_DATA).hexdigest()
    assert {stat.S_IMODE(os.lstat(p).st_mode) for p in (entry, trust.digest_path(entry))} == {0o600}
    assert trust.verified_entry(entry, what="pairs")
    assert sorted(p.name for p in folder.iterdir()) == ["pair.npy", "pair.npy.sha256"]  # no temp left


def test_ranks_making_the_same_out_dir_under_a_group_writable_umask_all_accept_it(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    assert _race(_prepare_same_out_dirs, tmp_path) == []
    modes = {stat.S_IMODE(os.lstat(tmp_path / f"run{i}").st_mode) for i in range(_ROUNDS)}
    assert all(mode & trust.UNSAFE_BITS == 0 for mode in modes), modes
