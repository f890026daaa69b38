"""Contract tests: ``edgesr::DynamicSnakeConv`` through NVIDIA's real ``tensorrt.plugin`` code.

NVIDIA's plugin package (``_lib.py``, ``_validate.py``, ``_plugin_class.py``, ``_tensor.py``,
``_autotune.py``) comes from the ``tensorrt-cu12-bindings`` 10.13.0.35 wheel, installed with
``--no-deps`` (``.ci/run``); only its compiled core is stood in for (``trt_core_standin.py``).
The tests make the calls TensorRT's ONNX parser and builder make (creator lookup, plugin
fields as the parser builds them, output types and shapes, format combinations, AOT launch
parameters) and check the answers against independent oracles: hand-computed shapes, numpy
strides, the PTX text Triton emitted, the AOT calling convention of NVIDIA's docstring.
Under CI (``CI`` set) a missing wheel fails these tests instead of skipping them.
"""

from __future__ import annotations

import itertools
import logging
import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgesr.errors import EngineUnavailableError
from edgesr.runtime.engines.trt import build, plugin, plugin_launch
from edgesr.runtime.engines.trt.options import TrtOptions

sys.path.insert(0, str(Path(__file__).parent))
from trt_plugin_loader import NVIDIA_VERSION, trtp  # noqa: E402,F401  (the fixture)

pytestmark = pytest.mark.trt_contract
NAME, NS = "DynamicSnakeConv", "edgesr"


def parser_fields(trt: Any, kernel_size: int = 3, morph: int = 1, extend_scope: float = 1.0) -> Any:
    """The fields onnx-tensorrt's FallbackPluginImporter passes (onnxOpImporters.cpp,
    loadFields: ONNX INT -> kINT32, FLOAT -> kFLOAT32), in the creator's field order."""
    values = {"kernel_size": np.array([kernel_size], np.int32), "morph": np.array([morph], np.int32),
              "extend_scope": np.array([extend_scope], np.float32)}  # fmt: skip
    types_ = {"kernel_size": trt.PluginFieldType.INT32, "morph": trt.PluginFieldType.INT32,
              "extend_scope": trt.PluginFieldType.FLOAT32}  # fmt: skip
    creator = trt.get_plugin_registry().get_creator(NAME, "1", NS)
    return trt.PluginFieldCollection([trt.PluginField(f.name, values[f.name], types_[f.name]) for f in creator.field_names])


def _desc(trt: Any, dtype: Any, dims: tuple[int, ...]) -> Any:
    d = trt.PluginTensorDesc()
    d.type, d.format, d.dims = dtype, trt.TensorFormat.LINEAR, trt.Dims(dims)
    return trt.DynamicPluginTensorDesc(d)


def _aot_build(trt: Any, *, kernel_size: int, morph: int, c: int, o: int, dtypes: list[Any]) -> dict[str, Any]:
    """TensorRT's builder calls on an AOT plugin, with symbolic N, H, W and constant C, O."""
    creator = trt.get_plugin_registry().get_creator(NAME, "1", NS)
    plg = creator.create_plugin(NAME, NS, parser_fields(trt, kernel_size, morph), trt.TensorRTPhase.BUILD,
                                trt.QuickPluginCreationRequest.STRICT_AOT)  # fmt: skip
    out_types = plg.get_output_data_types(dtypes[:4], [4, 4, 4, 1])
    eb = trt.IExprBuilder()
    n, h, w = (trt.IDimensionExpr(symbol=s) for s in "NHW")
    wshape = (o, c, kernel_size, 1) if morph == 0 else (o, c, 1, kernel_size)
    inputs = [[n, eb.constant(c), h, w], [n, eb.constant(2 * kernel_size), h, w],
              [eb.constant(v) for v in wshape], [eb.constant(o)]]  # fmt: skip
    out_shape = plg.get_output_shapes(inputs, [], eb)[0]
    shapes = [(2, c, 37, 29), (2, 2 * kernel_size, 37, 29), wshape, (o,), (2, o, 37, 29)]
    in_out = [_desc(trt, t, s) for t, s in zip(dtypes, shapes, strict=True)]
    combos = plg.get_supported_format_combinations(in_out, 4)
    plg.configure_plugin(in_out[:4], in_out[4:])
    plg.set_tactic(0)
    launch, setter = types.SimpleNamespace(), _SymSetter()
    plg.get_launch_params(inputs, in_out, 4, launch, setter, eb)
    name, ptx = plg.get_kernel([d.desc for d in in_out[:4]], [in_out[4].desc])
    return {"plugin": plg, "out_types": out_types, "out_shape": out_shape, "combos": combos,
            "launch": launch, "extra": setter, "name": name, "ptx": ptx.decode()}  # fmt: skip


class _SymSetter(dict):
    nbSymExprs = 0


ENV = {"N": 2, "H": 37, "W": 29}


def _value(sym: Any) -> int:
    return sym.expr.evaluate(ENV)


# --------------------------------------------------------------------------- registration


def test_registration_passes_nvidia_validation(trtp: Any) -> None:
    assert plugin.register_dsconv_plugin() == ("aot", "jit")
    lib = sys.modules["tensorrt.plugin._lib"]
    d = lib.QDP_REGISTRY[plugin.PLUGIN_ID]
    assert d.input_tensor_names == ["x", "offset", "weight", "bias"]
    assert list(d.input_attrs.items()) == [("kernel_size", int), ("morph", int), ("extend_scope", float)]
    assert d.num_outputs == 1
    # aot_impl/impl receive every attribute (the engine's AOT launcher passes them all)
    assert d.aot_impl_attr_names == d.impl_attr_names == ["kernel_size", "morph", "extend_scope"]
    assert d.autotune_attr_names == [] and d.expects_tactic is False
    registry = trtp.op.edgesr  # NVIDIA binds the namespace on success
    assert registry.DynamicSnakeConv is d
    creator = sys.modules["tensorrt"].get_plugin_registry().get_creator(NAME, "1", NS)
    assert [f.name for f in creator.field_names] == ["kernel_size", "morph", "extend_scope"]
    # the validation dry run never reached TensorRT's registry
    assert [k for k in sys.modules["tensorrt"].get_plugin_registry().creators] == [(NAME, "1", NS)]
    assert plugin.register_dsconv_plugin() == ("aot", "jit")  # idempotent


def _aot_without_return_annotation(trtp: Any, plugin_id: str) -> None:
    """The defect found by the audit: dsconv_aot without a return annotation."""

    @trtp.aot_impl(plugin_id)
    def dsconv_aot(x, offset, weight, bias, kernel_size, morph, extend_scope, outputs, tactic):  # type: ignore[no-untyped-def]
        raise AssertionError("never called")


def test_a_rejected_definition_registers_nothing(trtp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin, "_define_aot", _aot_without_return_annotation)
    with pytest.raises(EngineUnavailableError, match="No return annotation found for aot_impl"):
        plugin.register_dsconv_plugin()
    assert sys.modules["tensorrt"].get_plugin_registry().creators == {}
    assert not hasattr(trtp.op, "edgesr")  # the parser would find nothing half-registered
    with pytest.raises(EngineUnavailableError, match="No return annotation"):  # remembered
        plugin.register_dsconv_plugin()


def _dsconv_model() -> bytes:
    import onnx  # the dev extra installs it: contract tests never skip
    from onnx import TensorProto, helper

    node = helper.make_node(NAME, ["x", "off", "w", "b"], ["y"], domain=NS, kernel_size=3, morph=0, extend_scope=1.0)
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("x", "off", "w", "b")]
    graph = helper.make_graph([node], "g", vi, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return onnx.helper.make_model(graph).SerializeToString()


def test_a_failed_registration_falls_back_with_one_log_line(
    trtp: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(plugin, "_define_aot", _aot_without_return_annotation)
    with caplog.at_level(logging.DEBUG, logger="edgesr"):
        assert build.choose_plugin_impl(TrtOptions(), _dsconv_model(), NVIDIA_VERSION) == ""
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1 and "ONNX local function" in lines[0].getMessage()


def test_the_plugin_is_chosen_when_it_registers(trtp: Any) -> None:
    model = _dsconv_model()
    assert build.choose_plugin_impl(TrtOptions(), model, NVIDIA_VERSION) == "aot"
    assert build.choose_plugin_impl(TrtOptions(plugin_impl="jit"), model, NVIDIA_VERSION) == "jit"
    assert build.choose_plugin_impl(TrtOptions(plugin=False), model, NVIDIA_VERSION) == ""


# --------------------------------------------------------------------------- the builder's calls


def test_creation_request_picks_aot_or_jit(trtp: Any) -> None:
    plugin.register_dsconv_plugin()
    trt = sys.modules["tensorrt"]
    creator = trt.get_plugin_registry().get_creator(NAME, "1", NS)
    make = lambda req: creator.create_plugin(NAME, NS, parser_fields(trt), trt.TensorRTPhase.BUILD, req)  # noqa: E731
    q = trt.QuickPluginCreationRequest
    assert type(make(q.STRICT_AOT)).__name__ == "_TemplateAOTPlugin"
    assert type(make(q.STRICT_JIT)).__name__ == "_TemplateJITPlugin"
    assert type(make(q.PREFER_JIT)).__name__ == "_TemplateJITPlugin"
    # both implementations defined and no preference: NVIDIA refuses, which is why the build
    # sets PREFER_*_PYTHON_PLUGINS and tags each node with `aot`
    with pytest.raises(ValueError, match="has both AOT and JIT"):
        make(q.UNKNOWN)


@pytest.mark.parametrize("morph", [0, 1])
def test_output_type_and_shape(trtp: Any, morph: int) -> None:
    plugin.register_dsconv_plugin()
    trt = sys.modules["tensorrt"]
    fp32 = trt.DataType.FLOAT
    r = _aot_build(trt, kernel_size=3, morph=morph, c=8, o=12, dtypes=[fp32] * 5)
    assert r["out_types"] == [fp32]
    assert [e.evaluate(ENV) for e in r["out_shape"]] == [2, 12, 37, 29]  # [N, O, H, W]


def test_autotune_offers_every_fp32_fp16_mix_with_output_like_x(trtp: Any) -> None:
    plugin.register_dsconv_plugin()
    trt = sys.modules["tensorrt"]
    dt = trt.DataType
    r = _aot_build(trt, kernel_size=3, morph=0, c=4, o=4, dtypes=[dt.FLOAT] * 5)
    got = {tuple(d.type for d in r["combos"][i : i + 5]) for i in range(0, len(r["combos"]), 5)}
    expected = {(a, b, c, d, a) for a, b, c, d in itertools.product((dt.FLOAT, dt.HALF), repeat=4)}
    assert got == expected and len(r["combos"]) == 5 * 16
    assert {d.format for d in r["combos"]} == {trt.TensorFormat.LINEAR}


@pytest.mark.parametrize(("cc", "dtype"), [((8, 7), "FLOAT"), ((9, 0), "FLOAT"), ((8, 7), "HALF")])
def test_aot_impl_returns_kernel_ptx_launch_and_scalars(trtp: Any, cc: tuple[int, int], dtype: str) -> None:
    plugin_launch.set_build_target(plugin_launch.BuildTarget(cc))
    plugin.register_dsconv_plugin()
    trt = sys.modules["tensorrt"]
    t = getattr(trt.DataType, dtype)
    k, c, o = 5, 6, 20
    r = _aot_build(trt, kernel_size=k, morph=1, c=c, o=o, dtypes=[t, trt.DataType.FLOAT, t, t, t])
    ptx, name = r["ptx"], r["name"]
    name = name.decode() if isinstance(name, bytes) else name
    entry = re.search(r"\.entry\s+(\w+)\s*\(([^)]*)\)", ptx)
    assert entry is not None and entry.group(1) == name  # kernel name = the PTX entry
    assert re.search(rf"^\.target sm_{cc[0]}{cc[1]}", ptx, re.M)
    # NVIDIA's AOT convention: input pointers, then the extra int32 args, then the output
    params = [p.split()[1:3] for p in entry.group(2).split(",") if p.strip()]
    assert len(params) == 4 + 17 + 1
    assert all(p[0] == ".u64" for p in params[:4] + params[-1:]) and all(p[0] == ".u32" for p in params[4:21])
    extra = [_value(r["extra"][i]) for i in range(r["extra"].nbSymExprs)]
    n, h, w = ENV["N"], ENV["H"], ENV["W"]
    strides = [list(np.array(np.empty(s, np.int8).strides)) for s in ((n, c, h, w), (n, 2 * k, h, w), (n, o, h, w))]
    assert extra == [c, h, w, o, n * h * w, *strides[0], *strides[1], *strides[2]]
    launch = r["launch"]
    reqntid = re.search(r"\.reqntid\s+(\d+)", ptx)
    assert reqntid is not None and _value(launch.block_x) == int(reqntid.group(1))
    assert _value(launch.block_y) == _value(launch.block_z) == _value(launch.grid_z) == 1
    grid_x, grid_y = _value(launch.grid_x), _value(launch.grid_y)
    block_p = -(-n * h * w // grid_x)  # pixels per program (the grid covers every pixel once)
    assert grid_x * block_p >= n * h * w > (grid_x - 1) * block_p
    assert grid_y >= 1 and grid_y * 32 >= o  # output-channel blocks are at most 32 wide
