"""One line, exit 2, for every usage error; nothing breaks with stdout closed (issue 16, part 3).

Through the real console scripts: argparse's usage errors as one line naming ``--help``,
every command with its stdout closed (``>&-``: no traceback, the work still done), and
edgesr-eval refusing an HR/LR pair whose sizes do not match the scale. The thread bound's
oracle is ``os.sched_getaffinity``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from battery_util import assert_refused, run, script
from edgesr.cli_util import UsageError, check_threads, usable_cores

COMMANDS = ["edgesr-run", "edgesr-export", "edgesr-bench", "edgesr-train", "edgesr-eval",
            "edgesr-weights", "edgesr-data"]


def _run_stdout_closed(name: str, *args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``name args >&-``: descriptor 1 closed in the child before it starts."""
    return subprocess.run([*script(name), *map(str, args)], stdout=None, stderr=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}, timeout=180,
                          preexec_fn=lambda: os.close(1))


@pytest.mark.parametrize("name", COMMANDS)
def test_a_bad_flag_is_one_line_naming_help(name: str) -> None:
    line = assert_refused(run(name, "--no-such-flag", "x"), name)
    assert f"{name}" in line and "--help" in line


def test_a_sub_command_usage_error_is_one_line() -> None:
    assert_refused(run("edgesr-bench", "latency", "--no-such-flag"), "edgesr-bench", "--help")


@pytest.mark.parametrize("name", COMMANDS)
def test_help_with_stdout_closed(name: str) -> None:
    result = _run_stdout_closed(name, "--help")
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_a_refusal_with_stdout_closed_is_still_one_line() -> None:
    result = _run_stdout_closed("edgesr-weights", "convert", "/no/such/file.pth", "-o", "/tmp/x.safetensors")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr


def test_an_upscale_with_stdout_closed_writes_its_image(toy_onnx: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.new("RGB", (24, 20), (90, 140, 30)).save(src)
    out = tmp_path / "out.png"
    result = _run_stdout_closed("edgesr-run", "--model", toy_onnx, src, "-o", out)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    with Image.open(out) as image:  # a clean PNG: no summary line landed in the file
        assert image.size == (48, 40)
        image.load()


def test_threads_are_bounded_by_the_usable_cores() -> None:
    cores = len(os.sched_getaffinity(0))
    assert usable_cores() == cores
    check_threads(0)
    check_threads(cores)
    for bad in (cores + 1, 2**40, -1):
        with pytest.raises(UsageError, match=f"--threads {bad}: expected 0 .* to {cores}"):
            check_threads(bad)


def test_eval_refuses_an_lr_that_does_not_match_its_hr(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    bench = tmp_path / "bench"
    (bench / "HR").mkdir(parents=True)
    (bench / "LR_bicubic" / "X4").mkdir(parents=True)
    Image.new("RGB", (160, 120), (120, 80, 40)).save(bench / "HR" / "a.png")
    Image.new("RGB", (10, 10), (120, 80, 40)).save(bench / "LR_bicubic" / "X4" / "ax4.png")
    result = run("edgesr-eval", "--model", "osffnet_x4", "--data", bench)
    assert_refused(result, "edgesr-eval", "a.png (160x120)", "ax4.png (10x10)", "expected an LR of 40x30")


def test_eval_takes_an_lr_of_a_hr_not_a_multiple_of_the_scale(tmp_path: Path) -> None:
    # Set14-style: a 250x361 HR and its 62x90 x4 LR (the HR mod-cropped before shrinking).
    from edgesr.train.evaluate import load_pairs

    bench = tmp_path / "bench"
    (bench / "HR").mkdir(parents=True)
    (bench / "LR_bicubic" / "X4").mkdir(parents=True)
    Image.new("RGB", (250, 361), (120, 80, 40)).save(bench / "HR" / "comic.png")
    Image.new("RGB", (62, 90), (120, 80, 40)).save(bench / "LR_bicubic" / "X4" / "comicx4.png")
    (pair,) = load_pairs(bench, scale=4)
    assert pair.hr.shape == (360, 248, 3) and pair.lr.shape == (90, 62, 3)


# --------------------------------------------------------------------- nothing lost on failure


def test_a_name_the_terminal_cannot_show_is_escaped_not_an_error_after_writing(toy_onnx: Path,
                                                                            tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.new("RGB", (24, 20), (90, 140, 30)).save(src)
    out = tmp_path / "über.png"
    result = run("edgesr-run", "--model", toy_onnx, src, "-o", out, env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "\\xfcber.png" in result.stdout and out.is_file()


def test_weights_convert_never_replaces_a_dangling_symlink(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    link = tmp_path / "w.safetensors"
    link.symlink_to(tmp_path / "nowhere.safetensors")
    from edgesr.weights import shipped_weights

    result = run("edgesr-weights", "convert", shipped_weights("bsrn_x2"), "-o", link)
    assert_refused(result, "edgesr-weights", "symbolic link", "never replaces")
    assert link.is_symlink() and os.readlink(link) == str(tmp_path / "nowhere.safetensors")


def test_edgesr_data_removes_what_it_made_when_a_package_is_broken(tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    broken = tmp_path / "mate-backgrounds.deb"
    broken.write_bytes(b"not a Debian archive")
    kept = tmp_path / "kept"
    (kept / "train").mkdir(parents=True)
    (kept / "train" / "mine.png").write_bytes(b"a file that was there before")
    for out in (tmp_path / "new", kept):
        result = run("edgesr-data", "photos", out, "--mate", broken)
        assert_refused(result, "edgesr-data", "mate-backgrounds.deb")
    assert not (tmp_path / "new").exists()
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*")) == ["train", "train/mine.png"]


def test_a_file_name_with_a_newline_stays_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "two\nlines.png"
    result = run("edgesr-run", "--model", "osffnet_x4", missing, "-o", tmp_path / "o.png")
    assert_refused(result, "edgesr-run", "two\\nlines.png")


def test_a_deeply_nested_json_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    result = run("edgesr-bench", "report", deep, "-o", tmp_path / "report.md")
    assert_refused(result, "edgesr-bench", "nested too deeply")
    assert not (tmp_path / "report.md").exists()


def test_eval_refuses_a_set_with_an_unreadable_sub_folder() -> None:
    # Root reads every folder, so the command runs as a second user.
    pytest.importorskip("torch")
    from trust_util import own_folder_of, run_as, second_user, shared_scratch

    other = second_user()
    for scratch in shared_scratch():
        bench = scratch / "bench"
        (bench / "closed").mkdir(parents=True)
        Image.new("RGB", (64, 48), (120, 80, 40)).save(bench / "a.png")
        Image.new("RGB", (64, 48), (20, 80, 140)).save(bench / "closed" / "b.png")
        bench.chmod(0o755)
        (bench / "closed").chmod(0o700)
        home = own_folder_of(other, scratch / "home")
        result = run_as(other, "edgesr-eval", "--model", "osffnet_x4", "--data", bench,
                        env={"HOME": str(home), "EDGESR_CACHE_DIR": str(home / "cache")}, view=scratch / "view")
        assert_refused(result, "edgesr-eval", f"{bench / 'closed'}", "Permission denied")
