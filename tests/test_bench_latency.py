"""edgesr-bench latency / report / predict on the shipped ONNX (small inputs, few repeats)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgesr.benchmarks.cli import main
from edgesr.weights import shipped_onnx

SHIPPED = str(shipped_onnx("osffnet_x4"))


@pytest.fixture(scope="module")
def latency_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "r.json"
    assert main(["latency", SHIPPED, "--engine", "ort:cpu", "--size", "20x16", "24x20", "--warmup", "0",
                 "--repeats", "3", "--json", str(path)]) == 0
    return path


def test_latency_json_records_timings_machine_and_cost(latency_json: Path) -> None:
    doc = json.loads(latency_json.read_text())
    assert doc["schema"] == "edgesr.latency/1" and doc["model"]["scale"] == 4
    assert doc["machine"]["cpu_cores"] == os.cpu_count() and "edgesr-bench" in doc["machine"]["command"]
    assert doc["machine"]["versions"]["onnxruntime"] == __import__("onnxruntime").__version__
    assert [(r["width"], r["height"]) for r in doc["results"]] == [(20, 16), (24, 20)]
    for r in doc["results"]:
        assert r["provider_ran"] == "CPUExecutionProvider" and r["label"] == "ort:cpu"
        assert len(r["samples_ms"]) == 3
        assert r["latency_ms"]["p50"] == pytest.approx(float(np.median(r["samples_ms"])))
        assert r["latency_ms"]["min"] == min(r["samples_ms"]) and r["build_s"] > 0
    small, large = doc["cost"]
    # Conv dominates; 24x20 has 480/320 = 1.5 times the pixels of 20x16
    assert large["by_op"]["Conv"]["multi_adds"] == pytest.approx(1.5 * small["by_op"]["Conv"]["multi_adds"], rel=0.01)


def test_report_merges_with_the_floor_and_draws_plots(latency_json: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep.md"
    assert main(["report", str(latency_json), str(latency_json), "--target", "jetson-orin-nano", "-o", str(out)]) == 0
    text = out.read_text()
    doc = json.loads(latency_json.read_text())
    cost = doc["cost"][0]
    floor_ms = max(2 * cost["multi_adds"] / 1.28e12, cost["bytes_fp32"] / 68e9) * 1e3  # Orin Nano, by hand
    assert f"| {floor_ms:.2f} |" in text and "measured/floor (jetson-orin-nano)" in text
    assert text.count("| ort:cpu (CPUExecutionProvider) |") == 4  # two files x two sizes
    pytest.importorskip("matplotlib")
    for png in ("rep_latency.png", "rep_latency_vs_multi_adds.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({png})" in text


def test_a_jetson_file_is_compared_with_its_own_target(latency_json: Path, tmp_path: Path) -> None:
    doc = json.loads(latency_json.read_text())
    doc["machine"]["board"] = {"model": "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
                               "power_mode": "NV Power Mode: MAXN 0"}
    (tmp_path / "jetson.json").write_text(json.dumps(doc))
    assert main(["report", str(tmp_path / "jetson.json"), "-o", str(tmp_path / "j.md")]) == 0
    row = next(line for line in (tmp_path / "j.md").read_text().splitlines() if line.startswith("| NVIDIA Jetson Orin NX"))
    cost, p50_ms = doc["cost"][0], doc["results"][0]["latency_ms"]["p50"]
    floor_s = max(2 * cost["multi_adds"] / 1.88e12, cost["bytes_fp32"] / 102.4e9)  # Orin NX datasheet figures
    assert f"| {p50_ms / 1e3 / floor_s:.1f}x (jetson-orin-nx) |" in row


def test_the_torch_reference_is_timed_beside_ort(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    assert main(["latency", "osffnet_x4", "--engine", "ort", "torch", "--size", "20x16", "--warmup", "0",
                 "--repeats", "1", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [r["label"] for r in doc["results"]] == ["ort", "torch"] and doc["model"]["name"] == "osffnet_x4"
    assert doc["results"][1]["device"] == "cpu" and doc["results"][1]["precision"] == "fp32"


def test_missing_provider_is_reported_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import onnxruntime

    if "CoreMLExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CoreML")
    assert main(["latency", SHIPPED, "--engine", "ort:coreml", "--repeats", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "CoreMLExecutionProvider" in err and "not in this onnxruntime build" in err


def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["predict", SHIPPED, "--target", "jetson-orin-mx"]) == 2
    assert "Did you mean 'jetson-orin-nx'" in capsys.readouterr().err
    (tmp_path / "x.json").write_text("{}")
    assert main(["report", str(tmp_path / "x.json"), "-o", str(tmp_path / "r.md")]) == 2
    assert "expected 'edgesr.latency/1'" in capsys.readouterr().err
