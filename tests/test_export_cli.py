"""edgesr-export: summary, default names, refusals and one-line errors (exit code 2)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edgesr.export.cli import main  # noqa: E402


def _one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("edgesr-export: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_export_prints_summary_and_exits_0(tmp_path, capsys, caplog) -> None:
    out = tmp_path / "o.onnx"
    caplog.set_level(logging.INFO)
    assert main(["--model", "osffnet-tiny", "--scale", "4", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert out.is_file() and f"wrote {out}" in text
    for expected in ("opset 18", "MB", "nodes", "Conv", "params", "simplifier  onnxsim",
                     "odd-size random 1x3x37x29", "photo crop 1x3x96x96", "max abs", "PSNR",
                     "untrained initialization"):
        assert expected in text, expected
    # progress and the untrained-weights warning are log records (stderr), not the summary
    assert "exporting osffnet-tiny_x4" in caplog.text and "UNTRAINED" in caplog.text
    assert "exporting" not in text and "UNTRAINED" not in text


def test_fp16_default_name_in_current_folder_lists_fp32_nodes(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--model", "lmfn-tiny_x4", "--fp16", "--no-check"]) == 0
    text = capsys.readouterr().out
    assert (tmp_path / "lmfn-tiny_x4_fp16.onnx").is_file()
    assert "fp16" in text and "parity      not checked" in text
    kept = next(line for line in text.splitlines() if "kept FP32" in line)
    assert "DynamicSnakeConv" in kept and "InstanceNormalization" in kept and "ReduceMean" in kept


def test_unknown_model_is_one_line_with_suggestion(capsys) -> None:
    assert main(["--model", "osfnet_x4"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "unknown model 'osfnet_x4'" in line and "Did you mean 'osffnet_x4'" in line


def test_contradicting_scale_and_missing_scale_exit_2(capsys) -> None:
    assert main(["--model", "osffnet_x4", "--scale", "2"]) == 2
    assert "--scale 2" in _one_line_error(capsys.readouterr().err)
    assert main(["--model", "osffnet"]) == 2
    assert "needs a scale" in _one_line_error(capsys.readouterr().err)


def test_existing_output_is_untouched_without_overwrite(tmp_path, capsys) -> None:
    out = tmp_path / "keep.onnx"
    out.write_bytes(b"not yours")
    stamp = out.stat().st_mtime_ns
    assert main(["--model", "osffnet-tiny_x4", "-o", str(out)]) == 2
    assert "--overwrite" in _one_line_error(capsys.readouterr().err)
    assert out.read_bytes() == b"not yours" and out.stat().st_mtime_ns == stamp
    assert main(["--model", "osffnet-tiny_x4", "-o", str(out), "--overwrite", "--no-check",
                 "--no-simplify"]) == 0
    assert onnx.load(str(out)).graph.node
    assert "simplifier  none" in capsys.readouterr().out


def test_help_explains_flags_and_tolerances(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--model", "--scale", "--weights", "--opset", "--fp16", "--no-simplify",
                 "--inline-functions", "--no-check", "--output", "--overwrite"):
        assert flag in text, flag
    for tolerance in ("1e-3", "60 dB", "45 dB", "NaN/Inf", "37x29", "96x96"):
        assert tolerance in text, tolerance


def test_console_script_is_installed() -> None:
    script = shutil.which("edgesr-export") or str(Path(sys.executable).parent / "edgesr-export")
    if not os.path.exists(script):
        pytest.skip("edgesr-export is not installed (pip install -e .)")
    done = subprocess.run([script, "--model", "nosuchmodel_x4"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert _one_line_error(done.stderr).startswith("edgesr-export: error: unknown model")
