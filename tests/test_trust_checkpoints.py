"""Resuming training runs no code and reads only the user's own --out-dir (issue 16, part 1).

Each case goes through the real ``edgesr-train``: a planted pickle never runs, a pointer
never leaves ``checkpoints/``, an --out-dir someone else could write is refused, and every
malformed resume file is one stderr line with exit 2.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from battery_util import assert_refused, run
from trust_util import MarkerPickle, own_folder_of, run_as, second_user, shared_scratch

torch = pytest.importorskip("torch")

from edgesr.errors import TrustError, WeightsError  # noqa: E402
from edgesr.train.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402

TRAIN = ("--config", "osffnet_x2", "--model", "osffnet-tiny_x2", "--batch-size", "2",
         "--lr-patch-px", "16", "--checkpoint-every", "1", "--num-workers", "0")
CHECKPOINT = "checkpoints/iter_0000001"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    yield from shared_scratch()


@pytest.fixture(scope="module")
def trained(scratch: Path) -> Path:
    """A real run's --out-dir after one iteration (a checkpoint at iteration 1), and its data."""
    from PIL import Image
    from skimage import data

    photos = scratch / "photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()[100:164, 180:244]).save(photos / "t1.png")
    out = scratch / "trained"
    result = run("edgesr-train", *TRAIN, "--train-dir", photos, "--out-dir", out, "--iterations", "1")
    assert result.returncode == 0, result.stderr
    assert (out / CHECKPOINT / "state.json").is_file()
    return out


@pytest.fixture()
def out(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(trained, copy)
    return copy


def plant_pickle(path: Path, marker: Path) -> None:
    path.unlink(missing_ok=True)
    path.write_bytes(pickle.dumps(MarkerPickle(marker)))


def test_the_planted_pickle_runs_when_unpickled(tmp_path: Path) -> None:
    # The oracle for the cases below: this payload does leave its mark when unpickled.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(MarkerPickle(marker)))
    assert marker.exists()


def _plant(out: Path, planted: str, drop: list[str], marker: Path) -> None:
    for name in drop:
        (out / CHECKPOINT / name).unlink()
    if planted == "state.pt":  # torch's own container around the payload, as torch.save writes it
        torch.save({"iteration": 1, "payload": MarkerPickle(marker)}, out / CHECKPOINT / planted)
    else:
        plant_pickle(out / CHECKPOINT / planted, marker)


@pytest.mark.parametrize(("planted", "drop", "needle"), [
    ("state.pt", ["state.json", "state.safetensors"], "as a training state"),  # an old-format checkpoint
    ("../latest", [], "not a checkpoint pointer"),
])
def test_a_planted_pickle_never_runs(planted: str, drop: list[str], needle: str, out: Path, trained: Path,
                                     tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _plant(out, planted, drop, marker)
    result = run("edgesr-train", *TRAIN, "--train-dir", trained.parent / "photos", "--out-dir", out,
                 "--iterations", "2")
    assert not marker.exists()
    assert_refused(result, "edgesr-train", needle)


@pytest.mark.parametrize(("planted", "needle"), [
    ("state.json", "state.json"), ("state.safetensors", "state.safetensors"),
    ("model.safetensors", "model.safetensors"), ("state.pt", None),  # beside state.json: never read
])
def test_a_pickle_planted_in_any_checkpoint_file_never_runs(planted: str, needle: str | None, out: Path,
                                                            tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _plant(out, planted, [], marker)
    if needle is None:
        _load(out)
    else:
        with pytest.raises(WeightsError, match=needle):
            _load(out)
    assert not marker.exists()


def test_an_old_state_pt_still_resumes_without_pickle_code(out: Path, trained: Path) -> None:
    # A checkpoint of an earlier edgesr (state.pt, torch.save of the plain state) resumes.
    from edgesr.train.checkpoint import _decoded_state

    state = _decoded_state(out / CHECKPOINT)
    torch.save(state, out / CHECKPOINT / "state.pt")
    for name in ("state.json", "state.safetensors"):
        (out / CHECKPOINT / name).unlink()
    result = run("edgesr-train", *TRAIN, "--train-dir", trained.parent / "photos", "--out-dir", out,
                 "--iterations", "2")
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stderr and "(iteration 1)" in result.stderr


@pytest.mark.parametrize(("pointer", "needle"), [
    ("{}", "not a checkpoint pointer"),
    ("[]", "not a checkpoint pointer"),
    ('{"checkpoint": 5}', "not a checkpoint pointer"),
    ('{"checkpoint": "../../elsewhere"}', "not a checkpoint pointer"),
    ('{"checkpoint": "iter_0000001", "more": 1}', "not a checkpoint pointer"),
    ('{"checkpoint": "iter_0000009"}', "which does not exist"),
    ("[" * 3000 + "]" * 3000, "not a checkpoint pointer"),
    ('{"checkpoint": "iter_00', "not a checkpoint pointer"),
])
def test_a_malformed_pointer_is_one_line(pointer: str, needle: str, out: Path) -> None:
    (out / "checkpoints/latest").write_text(pointer)
    with pytest.raises(WeightsError, match=needle):
        latest_checkpoint(out)


def test_a_checkpoint_folder_that_is_a_symlink_is_refused(out: Path) -> None:
    elsewhere = out.parent / "elsewhere"
    shutil.move(out / CHECKPOINT, elsewhere)
    (out / CHECKPOINT).symlink_to(elsewhere)
    with pytest.raises(WeightsError, match="is a symbolic link"):
        latest_checkpoint(out)


def _load(out: Path) -> None:
    from edgesr.models.registry import create_model

    load_checkpoint(out / CHECKPOINT, model=create_model("osffnet-tiny_x2", eval_mode=False), ema=None)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_state(out: Path, change) -> None:
    path = out / CHECKPOINT / "state.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(("damage", "needle"), [
    (lambda o: _truncate(o / CHECKPOINT / "state.safetensors"), "is it truncated"),
    (lambda o: _truncate(o / CHECKPOINT / "state.json"), "is it truncated"),
    (lambda o: _edit_state(o, lambda d: d["state"]["__dict__"].append(["extra", 1])), "expected the fields"),
    (lambda o: _edit_state(o, lambda d: d.update(format="other")), "not a training state"),
    (lambda o: _edit_state(o, lambda d: d["state"]["__dict__"].__setitem__(0, ["iteration", -3])),
     "malformed iteration"),
    (lambda o: (o / CHECKPOINT / "state.json").write_text('{"format": "edgesr-train-state/1", "state": '
                                                          + "[" * 100 + "]" * 100 + "}"), "nested deeper"),
    (lambda o: (o / CHECKPOINT / "state.json").write_text("[" * 100000 + "]" * 100000), "is it truncated"),
    (lambda o: (o / CHECKPOINT / "model.safetensors").unlink(), "not a complete checkpoint"),
])
def test_a_malformed_state_is_one_line(damage, needle: str, out: Path) -> None:
    damage(out)
    with pytest.raises(WeightsError, match=needle):
        _load(out)


def test_a_truncated_old_state_pt_is_one_line(out: Path) -> None:
    from edgesr.train.checkpoint import _decoded_state

    torch.save(_decoded_state(out / CHECKPOINT), out / CHECKPOINT / "state.pt")
    for name in ("state.json", "state.safetensors"):
        (out / CHECKPOINT / name).unlink()
    _truncate(out / CHECKPOINT / "state.pt")
    with pytest.raises(WeightsError, match="state.pt as a training state"):
        _load(out)


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o1777])
def test_an_out_dir_others_can_write_is_refused(mode: int, out: Path) -> None:
    out.chmod(mode)
    with pytest.raises(TrustError, match=f"--out-dir .* writable by group or others \\(mode {mode:04o}\\)"):
        latest_checkpoint(out)


def test_an_out_dir_owned_by_another_user_is_refused(out: Path) -> None:
    other = second_user()
    os.chown(out, other.pw_uid, other.pw_gid)
    with pytest.raises(TrustError, match=f"--out-dir .* owned by uid {other.pw_uid}"):
        latest_checkpoint(out)
    (out / "checkpoints").chmod(0o777)  # and the checkpoint folder, when the --out-dir is fine
    os.chown(out, os.geteuid(), os.getegid())
    with pytest.raises(TrustError, match="checkpoint folder .* writable by group or others"):
        latest_checkpoint(out)


def test_as_a_second_user_a_world_writable_out_dir_with_a_plant_is_refused(trained: Path,
                                                                            scratch: Path) -> None:
    # The battery's case: another user's world-writable --out-dir holding a planted state.pt.
    other = second_user()
    shared = scratch / "shared-run"
    shutil.copytree(trained, shared)
    marker = scratch / "ran-as-nobody"
    for name in ("state.json", "state.safetensors"):
        (shared / CHECKPOINT / name).unlink()
    torch.save({"iteration": 1, "payload": MarkerPickle(marker)}, shared / CHECKPOINT / "state.pt")
    for folder in (shared, shared / "checkpoints", shared / CHECKPOINT):
        folder.chmod(0o777)
    scratch.chmod(0o777)  # the payload could write its marker here
    home = own_folder_of(other, scratch / "home-nobody")
    try:
        result = run_as(other, "edgesr-train", *TRAIN, "--train-dir", trained.parent / "photos",
                        "--out-dir", shared, "--iterations", "2",
                        env={"HOME": str(home), "EDGESR_CACHE_DIR": str(home / "cache")},
                        view=scratch / "view")
    finally:
        scratch.chmod(0o755)
    assert not marker.exists()
    # The trainer makes the LR pairs (two notices) before it looks for a checkpoint; the
    # refusal is the last line. (Trainer calling prepare_out_dir first makes it the only one.)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("edgesr-train: error: refusing --out-dir") and "owned by uid 0" in last
