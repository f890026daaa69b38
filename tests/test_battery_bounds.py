"""Bounded reads and bounded numbers through the real ``edgesr-run`` (issue 16, part 5).

- A 1.9 GB junk ``.png`` (sparse: no disk) is refused after its first bytes: one line, exit 2,
  and the child's peak RSS (``getrusage(RUSAGE_CHILDREN)`` of a wrapper whose only child it
  is) stays far below the file's size. A real PNG header followed by 1.9 GB is refused the
  same way: its header says how much an image of that size can take.
- An .onnx whose edgesr metadata holds an absurd number is one line naming the key and range.
- An output larger than the budget is refused before any work, naming --max-output-mb.

The oracles: the file's size (os.stat) against the RSS; the metadata ranges against values
written by hand here; the output budget against a hand computation (W x H x s^2 x 3 x 4 bytes).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from battery_util import assert_ok, assert_refused, fingerprint, script
from conftest import TOY_OVERLAP_PX, TOY_SCALE, TOY_TILE_PX

JUNK_BYTES = 1_900_000_000  # under the 64 MP default's whole-file cap (about 2.06 GB)

_PEAK_RSS = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB on Linux
sys.exit(done.returncode)
"""


def _run_measured(*args: object) -> tuple[subprocess.CompletedProcess[str], int]:
    """``edgesr-run args`` under a wrapper process; (its result, the child's peak RSS in bytes)."""
    wrapper = subprocess.run([sys.executable, "-c", _PEAK_RSS, *script("edgesr-run"), *map(str, args)],
                             capture_output=True, text=True, timeout=120)
    *stdout, rss_kib = wrapper.stdout.splitlines()
    wrapper.stdout = "\n".join(stdout)
    return wrapper, int(rss_kib) * 1024


def _sparse(path: Path, head: bytes = b"") -> Path:
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(JUNK_BYTES)
    return path


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss units and sparse files as on Linux")
@pytest.mark.parametrize(("head", "needle"), [
    (b"", "not a PNG, JPEG, WebP, TIFF or BMP"),
    ("png header", "its header says 40x30"),
])
def test_a_huge_file_is_refused_after_its_first_bytes(head: object, needle: str, toy_onnx: Path,
                                                      tmp_path: Path) -> None:
    if head == "png header":
        Image.new("RGB", (40, 30), (200, 90, 10)).save(tmp_path / "real.png")
        head = (tmp_path / "real.png").read_bytes()
    src = _sparse(tmp_path / "huge.png", head)
    out = tmp_path / "out.png"
    result, peak_rss = _run_measured(src, "-o", out, "--model", toy_onnx)
    assert_refused(result, "edgesr-run", needle)
    assert peak_rss < src.stat().st_size / 8, peak_rss  # read whole, it would exceed the size
    assert not out.exists()


def _toy_with(tmp_path: Path, key: str, value: str) -> Path:
    import onnx

    from conftest import toy_sr_model
    from edgesr.spec import ModelSpec

    model = toy_sr_model()
    metadata = ModelSpec(arch="conv_x2", scale=TOY_SCALE, tile_px=TOY_TILE_PX,
                         overlap_px=TOY_OVERLAP_PX).to_metadata()
    metadata[key] = value
    for k, v in metadata.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    path = tmp_path / "planted.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("key", "value", "valid"), [
    ("edgesr.scale", "100000000000000000000", "from 1 to 16"),
    ("edgesr.scale", "1e20", "from 1 to 16"),
    ("edgesr.scale", "0", "from 1 to 16"),
    ("edgesr.tile_px", "-5", "from 1 to 8192"),
    ("edgesr.tile_px", "99999999999", "from 1 to 8192"),
    ("edgesr.overlap_px", "many", "from 0 to 1024"),
    ("edgesr.min_size_px", "100000000", "from 1 to 1024"),
    ("edgesr.size_multiple", "0", "from 1 to 1024"),
])
def test_absurd_metadata_is_one_line_naming_the_key_and_range(key: str, value: str, valid: str,
                                                              tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    model = _toy_with(tmp_path, key, value)
    src = tmp_path / "in.png"
    Image.new("RGB", (40, 30), (200, 90, 10)).save(src)
    before = fingerprint([model, src])
    out = tmp_path / "out.png"
    result = subprocess.run([*script("edgesr-run"), str(src), "-o", str(out), "--model", str(model)],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert_refused(result, "edgesr-run", f"metadata {key}={value!r}", f"expected an integer {valid}")
    assert not out.exists() and fingerprint([model, src]) == before


def test_metadata_at_the_ends_of_its_ranges_is_accepted(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    model = _toy_with(tmp_path, "edgesr.overlap_px", "0")
    src = tmp_path / "in.png"
    Image.new("RGB", (40, 30), (200, 90, 10)).save(src)
    out = tmp_path / "out.png"
    assert_ok(subprocess.run([*script("edgesr-run"), str(src), "-o", str(out), "--model", str(model)],
                             capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL))
    with Image.open(out) as image:
        assert image.size == (40 * TOY_SCALE, 30 * TOY_SCALE)


# --------------------------------------------------------------------- the output's budget
# Hand computation: a W x H input at x2 gives 2W x 2H pixels of 3 (RGB) or 4 (RGBA) float32
# values: 160x140 -> 320x280 = 89,600 px x 12 B = 1,075,200 B, over 1 MiB (1,048,576 B), so
# --max-output-mb 1 refuses it and names 2 (MiB, rounded up); 150x140 -> 84,000 px x 12 B =
# 1,008,000 B fits; as RGBA, 84,000 px x 16 B = 1,344,000 B does not.


@pytest.mark.parametrize(("size", "mode", "needle"), [
    ((160, 140), "RGB", "160x140 -> 320x280 (width x height), takes 2 MB as float32 RGB"),
    ((150, 140), "RGBA", "150x140 -> 300x280 (width x height), takes 2 MB as float32 RGBA"),
])
def test_an_output_over_the_budget_is_refused_before_any_work(size: tuple[int, int], mode: str, needle: str,
                                                              toy_onnx: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.new(mode, size, (200, 90, 10, 255)[:len(mode)]).save(src)
    before = fingerprint([src])
    out = tmp_path / "out.png"
    result = subprocess.run([*script("edgesr-run"), str(src), "-o", str(out), "--model", str(toy_onnx),
                             "--max-output-mb", "1"], capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert_refused(result, "edgesr-run", needle, "more than --max-output-mb 1", "pass --max-output-mb 2")
    assert "engine:" not in result.stdout  # refused before the engine was opened
    assert not out.exists() and fingerprint([src]) == before


def test_an_output_within_the_budget_is_written(toy_onnx: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.new("RGB", (150, 140), (200, 90, 10)).save(src)
    out = tmp_path / "out.png"
    assert_ok(subprocess.run([*script("edgesr-run"), str(src), "-o", str(out), "--model", str(toy_onnx),
                              "--max-output-mb", "1"], capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL))
    with Image.open(out) as image:
        assert image.size == (300, 280)


def test_the_default_budget_refuses_the_x4_output_of_a_64_mp_input() -> None:
    # 8000 x 8000 x 4² x 3 x 4 B = 12,288,000,000 B = 11,718.75 MiB (the "12 GB" of issue 16)
    from edgesr.errors import ImageError
    from edgesr.image_guard import DEFAULT_MAX_PIXELS
    from edgesr.runtime.output_budget import check_output_budget

    assert 8000 * 8000 <= DEFAULT_MAX_PIXELS  # the input itself is admitted
    with pytest.raises(ImageError, match="takes 11,719 MB as float32 RGB, more than --max-output-mb 4096"):
        check_output_budget(source="big.png", width=8000, height=8000, scale=4)
    check_output_budget(source="photo.jpg", width=4000, height=3000, scale=4)  # 12 MP x4: 2,197 MiB
