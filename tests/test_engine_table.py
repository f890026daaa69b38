"""The engine table: a toy engine is one module and one row, and the tools see it.

The toy engine (nearest-neighbour upscaling in numpy, in tests/toy_engine.py) implements only
``_infer``, ``_release`` and ``info``; the base class supplies checks, padding, cropping and the
lifecycle. Expected outputs come from numpy's ``repeat`` (an independent oracle).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesr.errors import ConfigError, EngineUnavailableError, ImageError, UnknownNameError
from edgesr.runtime import engines
from edgesr.runtime.engines import EngineDescriptor, engine_choices, open_engine, register_engine
from edgesr.spec import ModelSpec

sys.path.insert(0, str(Path(__file__).parent))  # tests/toy_engine.py is the engine's "one file"


@pytest.fixture
def toy_row():
    row = register_engine(EngineDescriptor(
        name="toy", engine="toy_engine:ToyEngine", options="toy_engine:ToyOptions", kinds=("cpu",),
        precisions=("fp32",), available=lambda: (True, "numpy is always here"),
        install_hint="nothing to install",
    ))
    yield row
    engines.unregister_engine("toy")


def test_a_registered_engine_is_a_choice_and_runs_through_the_shared_path(toy_row, tmp_path: Path) -> None:
    assert "toy" in engine_choices()
    spec = ModelSpec(arch="toy", scale=2, min_size_px=8)
    lr = np.random.default_rng(0).random((1, 3, 5, 7), dtype=np.float32)
    with open_engine("toy", model_path=tmp_path / "unused.onnx", spec=spec) as engine:
        sr = engine.run(lr)
        # padded to 8x8 by the base class, upscaled, cropped back to 10x14
        assert engine.infer_shapes == [(1, 3, 8, 8)]
        np.testing.assert_array_equal(sr, lr.repeat(2, axis=2).repeat(2, axis=3))
        with pytest.raises(ImageError, match="engine 'toy' received lr of shape"):
            engine.run(lr[0])
    assert engine.released == 1
    engine.close()  # idempotent: released once
    assert engine.released == 1
    with pytest.raises(EngineUnavailableError, match="ToyEngine was closed"):
        engine.run(lr)


def test_the_benchmark_and_eval_clis_offer_a_registered_engine(toy_row) -> None:
    from edgesr.benchmarks.cli import build_parser

    args = build_parser().parse_args(["latency", "m.onnx", "--engine", "toy"])
    assert args.engines == ["toy"]
    from edgesr.train.eval_cli import build_parser as eval_parser

    assert eval_parser().parse_args(["--model", "m", "--data", "d", "--engine", "toy"]).engine == "toy"


def test_unavailable_engine_says_how_to_install(tmp_path: Path) -> None:
    register_engine(EngineDescriptor(
        name="ghost", engine="no_such_module_here:Ghost", options="no_such_module_here:GhostOptions",
        kinds=("npu",), precisions=("fp16",), available=lambda: (False, "no NPU"),
        install_hint="pip install ghost-npu"))
    try:
        with pytest.raises(EngineUnavailableError, match="no NPU; pip install ghost-npu"):
            open_engine("ghost", model_path=tmp_path / "m.onnx")
    finally:
        engines.unregister_engine("ghost")
    with pytest.raises(UnknownNameError, match="Did you mean 'ort'"):
        open_engine("orr", model_path=tmp_path / "m.onnx")


def test_rows_are_checked_and_not_replaced_by_accident(toy_row) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_engine(toy_row)
    with pytest.raises(ConfigError, match="kinds"):
        EngineDescriptor(name="x", engine="m:X", options="m:O", kinds=("tpu",), precisions=("fp32",),
                         available=lambda: (True, ""), install_hint="")


def test_builtin_rows_describe_the_three_engines() -> None:
    rows = engines.ENGINES
    assert rows["trt"].kinds == ("gpu",) and rows["torch"].runs == "model"
    assert rows["trt"].engine.startswith("edgesr.runtime.engines.trt")  # lazily, by name
    assert engines.options_class("ort").__name__ == "OrtOptions"


def test_auto_calls_an_engine_that_is_not_installed_not_installed_never_passed_over() -> None:
    # A fresh `.[cpu]` install has no OpenVINO: auto's message must not say the job-size rule
    # passed it over (it was never a candidate). Stand in a package name that cannot exist.
    original = engines.ENGINES["openvino"]
    missing = dataclasses.replace(original, package="edgesr_test_no_such_package")
    register_engine(missing, replace=True)
    try:
        for lr_px in (10, 10**8):  # below and above OpenVINO's job-size rule
            choice = engines.choose_engine("auto", lr_px=lr_px)
            assert choice.name != "openvino"
            assert "openvino" not in choice.summary
            assert "openvino: edgesr_test_no_such_package is not installed" in choice.reason
    finally:
        register_engine(original, replace=True)
