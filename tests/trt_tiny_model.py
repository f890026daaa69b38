"""The tiny x2 SR graph the TensorRT tests build (with and without two DSConv nodes, FP32 or
FP16), and the PSNR they compare outputs with (peak = the reference's largest magnitude: the
random tiny model's outputs are not images in [0, 1])."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesr.spec import DSCONV_DOMAIN, DSCONV_OP_TYPE

SCALE = 2
META = {
    "edgesr.arch": "tiny_dsconv",
    "edgesr.scale": str(SCALE),
    "edgesr.version": "0.1.0",
    "edgesr.tile_px": "32",
    "edgesr.overlap_px": "4",
    "edgesr.min_size_px": "8",
    "edgesr.size_multiple": "1",
}



def tiny_sr_onnx(path: Path, *, precision: str = "fp32", dsconv: bool = True, seed: int = 0) -> Path:
    """A tiny x2 SR model: conv -> [DSConv morph 0 -> ReLU -> DSConv morph 1] -> conv ->
    DepthToSpace, with the edgesr.DynamicSnakeConv local function attached (needs onnx and,
    for the function body, the export layer's torch import)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    np_dtype = np.float16 if precision == "fp16" else np.float32
    inits = []

    def weight(name: str, shape: tuple[int, ...], scale: float = 0.3) -> str:
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np_dtype), name))
        return name

    k, feat = 3, 4
    nodes = []
    x = "lr"
    if precision == "fp16":
        nodes.append(helper.make_node("Cast", ["lr"], ["lr16"], to=TensorProto.FLOAT16))
        x = "lr16"
    nodes.append(helper.make_node("Conv", [x, weight("w1", (feat, 3, 3, 3)), weight("b1", (feat,))], ["f1"], pads=[1, 1, 1, 1]))
    last = "f1"
    if dsconv:
        for i, morph in enumerate((0, 1)):
            wshape = (feat, feat, k, 1) if morph == 0 else (feat, feat, 1, k)
            nodes += [
                helper.make_node("Conv", [last, weight(f"wo{i}", (2 * k, feat, 3, 3)), weight(f"bo{i}", (2 * k,))], [f"o{i}"], pads=[1, 1, 1, 1]),
                helper.make_node("Tanh", [f"o{i}"], [f"t{i}"]),
                helper.make_node(
                    DSCONV_OP_TYPE,
                    [last, f"t{i}", weight(f"wd{i}", wshape), weight(f"bd{i}", (feat,))],
                    [f"d{i}"],
                    domain=DSCONV_DOMAIN,
                    name=f"dsconv{i}",
                    kernel_size=k,
                    morph=morph,
                    extend_scope=1.0,
                ),
                helper.make_node("Relu", [f"d{i}"], [f"r{i}"]),
            ]
            last = f"r{i}"
    nodes.append(helper.make_node("Conv", [last, weight("w3", (3 * SCALE * SCALE, feat, 3, 3)), weight("b3", (3 * SCALE * SCALE,))], ["up"], pads=[1, 1, 1, 1]))
    out = "sr"
    if precision == "fp16":
        nodes.append(helper.make_node("DepthToSpace", ["up"], ["sr16"], blocksize=SCALE, mode="CRD"))
        nodes.append(helper.make_node("Cast", ["sr16"], ["sr"], to=TensorProto.FLOAT))
    else:
        nodes.append(helper.make_node("DepthToSpace", ["up"], [out], blocksize=SCALE, mode="CRD"))
    graph = helper.make_graph(
        nodes,
        "tiny_sr",
        [helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["N", 3, "H2", "W2"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    helper.set_model_props(model, {**META, "edgesr.precision": precision})
    if dsconv:
        pytest.importorskip("torch")  # the export layer (function body builder) imports torch
        from edgesr.export.dsconv_onnx import attach_dsconv_function

        model = attach_dsconv_function(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    peak = float(np.max(np.abs(b)))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
