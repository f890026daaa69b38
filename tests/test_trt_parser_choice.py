"""Which path TensorRT's ONNX parser takes for an ``edgesr::DynamicSnakeConv`` node, per
TensorRT version: the node's ONNX local function, the JIT plugin or the AOT plugin.

The parser (onnx-tensorrt, C++) is emulated from its published sources, read and
paraphrased here (no code copied):

- **10.0 to 10.6**: ``ModelImporter.cpp``, ``parseNode()`` (tag ``10.1-GA`` of
  github.com/onnx/onnx-tensorrt): a built-in importer for the op type, else the model's local
  function of that name, else ``FallbackPluginImporter`` (the plugin registry). A local
  function always wins; 10.7 is the release whose parser let plugins take precedence.
- **10.7 to 10.14**: ``ModelImporter.cpp``, ``parseNode()``: when a local function of that
  name exists, ``isNodeInPluginRegistry()`` is asked first; it looks the creator up by the
  node's ``plugin_version`` (default "1") and ``plugin_namespace`` (default "") attributes,
  and a registered plugin wins.
- **10.15 and later**: ``ModelImporter.cpp``, ``parseNode()``: a node that carries
  ``plugin_namespace`` (or any node, with ``OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE``) goes to
  the plugin when it is registered; otherwise built-in importer, local function, plugin.
  (10.15.1.29 is the first ``tensorrt-cu12-bindings`` wheel whose core exposes
  ``ENABLE_PLUGIN_OVERRIDE``; 10.14.1.48 does not.)
- **AOT or JIT**: ``importerUtils.cpp``, ``createPlugin()``, the ``IPluginCreatorV3Quick``
  branch (10.9 and later): a node attribute ``aot`` asks STRICT_AOT (1) or STRICT_JIT (0);
  else the network's PREFER_AOT/PREFER_JIT_PYTHON_PLUGINS flag asks PREFER_*; else UNKNOWN.
  Before 10.9 there is no request and every Python plugin is JIT. The request then goes to
  NVIDIA's Python creator (``tensorrt/plugin/_lib.py``), which runs here for real.
- **Fields**: ``onnxOpImporters.cpp``, ``loadFields()``: only the attributes the creator
  names (kernel_size, morph, extend_scope) become plugin fields, so the ``plugin_namespace``
  and ``aot`` tags never reach the plugin.

What edgesr decides (``build.choose_plugin_impl``, ``build.plugin_build_settings``,
``onnx_bytes.mark_plugin_nodes``) is real code; only the parser's dispatch is emulated.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from edgesr.runtime.engines.trt import build
from edgesr.runtime.engines.trt.onnx_bytes import mark_plugin_nodes
from edgesr.runtime.engines.trt.options import TrtOptions

sys.path.insert(0, str(Path(__file__).parent))
from test_trt_plugin_contract import NAME, NS, _dsconv_model, parser_fields  # noqa: E402
from trt_plugin_loader import trtp  # noqa: E402,F401  (the fixture)

pytestmark = pytest.mark.trt_contract


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def parser_route(version: str, attrs: dict[str, Any], *, has_local_function: bool, registry: Any,
                 plugin_override: bool = False) -> str:  # fmt: skip
    """onnx-tensorrt's parseNode() dispatch for a node with no built-in importer."""
    v = _version(version)
    creator = registry.get_creator(NAME, attrs.get("plugin_version", "1"), attrs.get("plugin_namespace", ""))
    if v >= (10, 15):
        if (plugin_override or "plugin_namespace" in attrs) and creator is not None:
            return "plugin"
        return "local function" if has_local_function else "plugin"
    if has_local_function:
        return "plugin" if v >= (10, 7) and creator is not None else "local function"
    return "plugin"


def creation_request(trt: Any, version: str, attrs: dict[str, Any], prefer_flag: str) -> Any:
    """importerUtils.cpp createPlugin(): the QuickPluginCreationRequest (None before 10.9)."""
    q = trt.QuickPluginCreationRequest
    if _version(version) < (10, 9):
        return None
    if "aot" in attrs:
        return q.STRICT_AOT if attrs["aot"] else q.STRICT_JIT
    return {"PREFER_AOT_PYTHON_PLUGINS": q.PREFER_AOT, "PREFER_JIT_PYTHON_PLUGINS": q.PREFER_JIT}.get(prefer_flag, q.UNKNOWN)


def _node_attrs(model: bytes) -> dict[str, Any]:
    import onnx
    from onnx import helper

    node = onnx.load_model_from_string(model).graph.node[0]
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _route_our_build(trtp: Any, version: str, plugin_impl_option: str) -> str:
    trt = sys.modules["tensorrt"]
    model = _dsconv_model()
    impl = build.choose_plugin_impl(TrtOptions(plugin_impl=plugin_impl_option), model, version)
    prefer = ""
    if impl:
        aot, prefer = build.plugin_build_settings(version, impl)
        model, _ = mark_plugin_nodes(model, aot=aot)
    attrs = _node_attrs(model)
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    route = parser_route(version, attrs, has_local_function=True, registry=trt.get_plugin_registry())
    if route == "local function":
        return route
    creator = trt.get_plugin_registry().get_creator(NAME, "1", attrs["plugin_namespace"])
    request = creation_request(trt, version, attrs, prefer)
    args = (NAME, NS, parser_fields(trt), trt.TensorRTPhase.BUILD)
    made = creator.create_plugin(*args) if request is None else creator.create_plugin(*args, request)
    return {"_TemplateAOTPlugin": "AOT plugin", "_TemplateJITPlugin": "JIT plugin"}[type(made).__name__]


@pytest.mark.parametrize(
    ("version", "option", "expected"),
    [
        ("10.0.1", "aot", "local function"),
        ("10.3.0", "aot", "local function"),  # JetPack 6.1/6.2
        ("10.5.0", "aot", "local function"),
        ("10.6.0", "aot", "local function"),  # tensorrt.plugin exists, but functions win
        ("10.7.0", "aot", "JIT plugin"),  # plugins win; no aot_impl yet
        ("10.8.0", "jit", "JIT plugin"),
        ("10.9.0", "aot", "AOT plugin"),
        ("10.13.0.35", "aot", "AOT plugin"),
        ("10.13.0.35", "jit", "JIT plugin"),
        ("10.15.1", "aot", "AOT plugin"),  # plugin_namespace rule
        ("11.0.0", "aot", "AOT plugin"),
        ("11.0.0", "jit", "JIT plugin"),
    ],
)
def test_dsconv_path_per_tensorrt_version(trtp: Any, version: str, option: str, expected: str) -> None:
    assert _route_our_build(trtp, version, option) == expected


@pytest.mark.parametrize("version", ["10.9.0", "10.13.0.35", "11.0.0"])
def test_an_untagged_node_would_fall_to_its_local_function(trtp: Any, version: str) -> None:
    """Why mark_plugin_nodes tags the node: registered under namespace "edgesr", the plugin is
    invisible to a lookup with the default namespace "" (10.7-10.14), and 10.15+ parsers
    prefer the local function unless the node names its plugin namespace."""
    from edgesr.runtime.engines.trt import plugin

    plugin.register_dsconv_plugin()
    registry = sys.modules["tensorrt"].get_plugin_registry()
    bare = _node_attrs(_dsconv_model())
    assert parser_route(version, bare, has_local_function=True, registry=registry) == "local function"
    tagged = {**bare, "plugin_namespace": NS}
    assert parser_route(version, tagged, has_local_function=True, registry=registry) == "plugin"


def test_without_tags_and_flags_nvidia_refuses_to_choose(trtp: Any) -> None:
    """A node with neither `aot` nor a PREFER flag asks UNKNOWN, and NVIDIA's creator refuses
    a plugin with both implementations: the build always sets one of them."""
    from edgesr.runtime.engines.trt import plugin

    plugin.register_dsconv_plugin()
    trt = sys.modules["tensorrt"]
    request = creation_request(trt, "10.13.0.35", {"plugin_namespace": NS}, "")
    assert request == trt.QuickPluginCreationRequest.UNKNOWN
    creator = trt.get_plugin_registry().get_creator(NAME, "1", NS)
    with pytest.raises(ValueError, match="PREFER_AOT_PYTHON_PLUGINS or"):
        creator.create_plugin(NAME, NS, parser_fields(trt), trt.TensorRTPhase.BUILD, request)
    for version, impl in [("10.9.0", "aot"), ("10.13.0.35", "jit"), ("11.0.0", "aot")]:
        aot, prefer = build.plugin_build_settings(version, impl)
        assert aot is (impl == "aot") and prefer == f"PREFER_{impl.upper()}_PYTHON_PLUGINS"
    assert build.plugin_build_settings("10.8.0", "jit") == (None, "")


@pytest.mark.parametrize("version", ["10.3.0", "10.6.0"])
def test_before_10_7_nothing_is_registered_and_one_line_says_why(
    trtp: Any, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    with caplog.at_level(logging.DEBUG, logger="edgesr"):
        assert build.choose_plugin_impl(TrtOptions(), _dsconv_model(), version) == ""
    assert sys.modules["tensorrt"].get_plugin_registry().creators == {}
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1 and "local function" in lines[0] and "10.7" in lines[0]
