"""ONNX files for the engine tests, as fixtures: the tiny OSFFNet (``osffnet-tiny_x4``, ESA
inside: needs 15 px) exported with ``torch.onnx.export``, and small graphs built with the onnx
package (no metadata, not SR, damaged). A test module imports the fixtures by their function
names (``tiny_fixture``) and asks for them by fixture name (``tiny``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesr.spec import ModelSpec

TINY = "osffnet-tiny_x4"
TINY_SPEC = ModelSpec(arch=TINY, scale=4, min_size_px=15, tile_px=64, overlap_px=8)


def add_metadata(model: onnx.ModelProto, spec: ModelSpec) -> onnx.ModelProto:
    for key, value in spec.to_metadata().items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    return model


def graph_model(nodes: list, inputs: list, outputs: list, inits: list = ()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def lr_info() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["n", 3, "h", "w"])


def classifier_model() -> onnx.ModelProto:
    """A valid ONNX graph with an image input that is not SR: (n, 3, h, w) -> (n, 3)."""
    return graph_model(
        [helper.make_node("GlobalAveragePool", ["lr"], ["p"]), helper.make_node("Flatten", ["p"], ["sr"])],
        [lr_info()], [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["n", 3])])


@pytest.fixture(scope="session", name="tiny")
def tiny_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path, Path]:
    """(torch model, ONNX with edgesr metadata, same ONNX without metadata)."""
    torch = pytest.importorskip("torch")
    from edgesr.models import create_model

    folder = tmp_path_factory.mktemp("ort_engine")
    model = create_model(TINY)
    raw = folder / "raw.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (torch.rand(1, 3, 24, 24),), str(raw), dynamo=False, opset_version=18,
            input_names=["lr"], output_names=["sr"],
            dynamic_axes={"lr": {0: "n", 2: "h", 3: "w"}, "sr": {0: "n", 2: "h2", 3: "w2"}},
        )
    proto = onnx.load(str(raw))
    plain = folder / "tiny_nometa.onnx"
    onnx.save(proto, str(plain))
    with_meta = folder / "tiny.onnx"
    onnx.save(add_metadata(proto, TINY_SPEC), str(with_meta))
    return model, with_meta, plain


@pytest.fixture(scope="session", name="odd_models")
def odd_models_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files that must be refused or probed: classifier, identity, x2 conv, garbage, ..."""
    folder = tmp_path_factory.mktemp("odd_models")
    paths = {}
    classifier = classifier_model()
    identity = graph_model([helper.make_node("Identity", ["lr"], ["sr"])], [lr_info()],
                            [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["n", 3, "h", "w"])])
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 0.1, (12, 3, 3, 3)).astype(np.float32), "w")
    conv_x2 = graph_model(
        [helper.make_node("Conv", ["lr", "w"], ["f"], pads=[1, 1, 1, 1]),
         helper.make_node("DepthToSpace", ["f"], ["sr"], blocksize=2, mode="CRD")],
        [lr_info()], [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["n", 3, "h2", "w2"])], [weight])
    for name, proto in (("classifier", classifier), ("identity", identity), ("conv_x2", conv_x2)):
        paths[name] = folder / f"{name}.onnx"
        onnx.save(proto, str(paths[name]))
    paths["identity_meta"] = folder / "identity_meta.onnx"
    onnx.save(add_metadata(identity, ModelSpec(arch="identity", scale=4)), str(paths["identity_meta"]))
    paths["garbage"] = folder / "garbage.onnx"
    paths["garbage"].write_bytes(b"this is not a protobuf \x00\xff" * 10)
    paths["empty"] = folder / "empty.onnx"
    paths["empty"].write_bytes(b"")
    full = paths["conv_x2"].read_bytes()
    paths["truncated"] = folder / "truncated.onnx"
    paths["truncated"].write_bytes(full[: len(full) // 2])
    return paths
