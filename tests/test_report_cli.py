"""edgesr-bench report: whatever latency JSON exists is reported, a malformed one is one line,
and the plots' labels lie inside the figure (real matplotlib layout, measured by its renderer).

The latency JSON comes from a real ``edgesr-bench latency`` run on the toy graph.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgesr.benchmarks.cli import main
from edgesr.benchmarks.report import load_measurements
from edgesr.benchmarks.roofline import target

# A CPU name as /proc/cpuinfo gives it on a Xeon (the plot once cut it to "Intel(R) Xeon(R) Process").
XEON = "Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz"


@pytest.fixture(scope="module")
def latency_json(toy_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "cpu.json"
    assert main(["latency", str(toy_onnx), "--size", "16x12", "24x16", "--warmup", "0", "--repeats", "2",
                 "--json", str(path)]) == 0
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("edgesr-bench: error: ") and "Traceback" not in lines[0]
    return lines[0]


def _bench(*args: object) -> subprocess.CompletedProcess[str]:
    """The real console script, so stderr is exactly what a user sees."""
    script = Path(sys.executable).with_name("edgesr-bench")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "edgesr.benchmarks.cli"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_missing_files_are_one_warning_each_and_the_rest_is_reported(latency_json: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    missing = [tmp_path / "gpu.json", tmp_path / "jetson.json"]
    result = _bench("report", latency_json, *missing, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [f"{m}: no such file; the report goes on without it"
                                                  for m in missing]
    assert "2 measurements from 1 file(s)" in out.read_text()  # two sizes x one engine, from cpu.json


def test_no_file_at_all_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _bench("report", tmp_path / "cpu.json", tmp_path / "gpu.json", "-o", tmp_path / "r.md")
    err = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(err) == 3, result.stderr  # a warning per file, then the error
    assert err[-1].startswith("edgesr-bench: error: none of the 2 latency JSON file(s) given exists")
    assert not (tmp_path / "r.md").exists()


@pytest.mark.parametrize(("break_it", "needle"), [
    (lambda d: d.pop("results"), "no 'results' entry"),
    (lambda d: d["results"][0].pop("latency_ms"), "no 'latency_ms' entry"),
    (lambda d: d.__setitem__("results", {"ort": 1}), "does not hold its fields"),
    (lambda d: d["machine"].pop("cpu_model"), "no 'cpu_model' entry"),
    (lambda d: d["results"][0].__setitem__("width", "wide"), "does not hold its fields"),
    (lambda d: d.__setitem__("model", None), "does not hold its fields"),
])
def test_the_right_schema_with_the_wrong_structure_is_one_line(
        latency_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], break_it, needle: str) -> None:
    document = json.loads(latency_json.read_text())
    broken = copy.deepcopy(document)
    break_it(broken)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    assert main(["report", str(path), "-o", str(tmp_path / "r.md")]) == 2
    line = _one_error_line(capsys)
    assert needle in line and "edgesr.latency/1" in line
    assert not (tmp_path / "r.md").exists()


def _renamed_rows(latency_json: Path, tmp_path: Path):  # noqa: ANN202
    """The measured rows as if taken on a 16-core Xeon host."""
    document = json.loads(latency_json.read_text())
    document["machine"].update(cpu_model=XEON, cpu_cores=16, hostname="gpu-node-3")
    path = tmp_path / "xeon.json"
    path.write_text(json.dumps(document))
    return load_measurements(path)


def _assert_inside(fig, texts) -> None:  # noqa: ANN001
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for text in texts:
        if not text.get_visible() or not text.get_text():
            continue
        extent = text.get_window_extent(renderer)
        assert (extent.x0 >= box.x0 - 0.5 and extent.x1 <= box.x1 + 0.5 and extent.y0 >= box.y0 - 0.5
                and extent.y1 <= box.y1 + 0.5), (text.get_text(), extent, box)


def _drawn_y_ticks(ax):  # noqa: ANN001, ANN202
    """The y tick labels inside the view limits (matplotlib keeps undrawn ones beyond them)."""
    low, high = sorted(ax.get_ylim())
    return [t for t in ax.get_yticklabels() if low <= t.get_position()[1] <= high]


def test_bar_labels_name_the_whole_cpu_and_fit_the_figure(latency_json: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from edgesr.benchmarks.plots import latency_bars_figure

    rows = _renamed_rows(latency_json, tmp_path)
    fig = latency_bars_figure(rows, [target("jetson-orin-nano")])
    try:
        fig.canvas.draw()
        (ax,) = fig.axes
        labels = ax.get_xticklabels()
        assert len(labels) == len(rows)
        for label in labels:
            one_line = " ".join(label.get_text().split())
            assert one_line.startswith("Intel Xeon Platinum 8480+ x16 (gpu-node-3) conv_x2 ort"), one_line
            assert "(R)" not in one_line and "GHz" not in one_line
        _assert_inside(fig, [*labels, *_drawn_y_ticks(ax), ax.title, ax.yaxis.label,
                             *ax.get_legend().get_texts()])
        renderer = fig.canvas.get_renderer()
        spans = sorted((t.get_window_extent(renderer).x0, t.get_window_extent(renderer).x1) for t in labels)
        assert all(left[1] <= right[0] for left, right in zip(spans, spans[1:])), spans  # no overlap
    finally:
        plt.close(fig)


def test_scatter_labels_and_annotations_fit_the_figure(latency_json: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from edgesr.benchmarks.plots import latency_vs_multi_adds_figure

    rows = _renamed_rows(latency_json, tmp_path)
    fig = latency_vs_multi_adds_figure(rows, [target("jetson-orin-nano"), target("jetson-orin-nx")])
    try:
        fig.canvas.draw()
        (ax,) = fig.axes
        legend = [" ".join(t.get_text().split()) for t in ax.get_legend().get_texts()]
        assert "ort on Intel Xeon Platinum 8480+ x16 (gpu-node-3)" in legend
        annotations = [c for c in ax.texts]
        assert len(annotations) == len(rows)
        _assert_inside(fig, [*annotations, *ax.get_legend().get_texts(), ax.title, ax.xaxis.label,
                             ax.yaxis.label])
    finally:
        plt.close(fig)


def test_the_plots_are_written_next_to_the_report(latency_json: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    out = tmp_path / "rep.md"
    assert main(["report", str(latency_json), "--target", "jetson-orin-nx", "-o", str(out)]) == 0
    for name in ("rep_latency.png", "rep_latency_vs_multi_adds.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.size[0] > 500
        assert f"]({name})" in out.read_text()
