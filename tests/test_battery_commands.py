"""The torch-side console scripts on hostile paths and values (issue 9, battery part 3):
edgesr-eval reports, edgesr-export -o, edgesr-train --out-dir and recipe values.

Each case: exit 2, one stderr line naming the problem, no traceback, nothing changed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from battery_util import assert_refused, fingerprint, read_only, run

pytest.importorskip("torch")


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    skdata = pytest.importorskip("skimage.data")
    folder = tmp_path / "D"
    folder.mkdir()
    Image.fromarray(skdata.astronaut()[100:164, 180:244]).save(folder / "t1.png")
    return folder


@pytest.mark.parametrize("flag", ["--csv", "--markdown"])
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_eval_report_onto_an_input_image_is_refused(flag: str, overwrite: list[str], data_dir: Path) -> None:
    before = fingerprint([data_dir])
    result = run("edgesr-eval", "--model", "osffnet_x4", "--data", data_dir, flag, data_dir / "t1.png",
                 *overwrite)
    assert_refused(result, "edgesr-eval", flag, "never overwrites an input")
    assert fingerprint([data_dir]) == before


def test_eval_report_into_a_read_only_folder(data_dir: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        result = run("edgesr-eval", "--model", "osffnet_x4", "--data", data_dir, "--csv", locked / "s.csv")
        assert_refused(result, "edgesr-eval", "--csv", "not writable")
    assert list(locked.iterdir()) == []


def test_export_into_a_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        result = run("edgesr-export", "--model", "osffnet-tiny_x2", "-o", locked / "m.onnx", "--no-check")
        assert_refused(result, "edgesr-export", "not writable")
    assert list(locked.iterdir()) == []


def test_train_out_dir_that_is_a_file(data_dir: Path, tmp_path: Path) -> None:
    taken = tmp_path / "run"
    taken.write_text("a file, not a folder")
    result = run("edgesr-train", "--config", "osffnet_x2", "--model", "osffnet-tiny_x2", "--train-dir",
                 data_dir, "--out-dir", taken, "--iterations", "1")
    assert_refused(result, "edgesr-train", "--out-dir", "not a folder")
    assert taken.read_text() == "a file, not a folder"


@pytest.mark.parametrize(("recipe_line", "flags", "needle"), [
    ("", ["--lr", "-1"], "lr = -1.0: expected a number in (0, 1]"),
    ('lr = "fast"', [], "lr = 'fast': expected a number in (0, 1]"),
    ("batch_size = 0", [], "batch_size = 0: expected an integer >= 1"),
    ("betas = [0.9, 1.5]", [], "betas = (0.9, 1.5): expected 2 numbers in [0, 1)"),
    ("lr_min = 0.5", [], "lr_min = 0.5: expected at most lr"),
])
def test_recipe_values_are_checked_with_their_range(recipe_line: str, flags: list[str], needle: str,
                                                     data_dir: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'model = "osffnet-tiny_x2"\ntrain_dir = "{data_dir}"\nout_dir = "{tmp_path / "o"}"\n'
                      f"{recipe_line}\n")
    result = run("edgesr-train", "--config", recipe, *flags)
    assert_refused(result, "edgesr-train", needle)
    assert not (tmp_path / "o").exists()
