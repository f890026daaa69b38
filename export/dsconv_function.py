"""The ONNX local function that carries DynamicSnakeConv's standard-op body (GridSample with
clamped coordinates), so ONNX Runtime, the reference evaluator and TensorRT without the plugin
all run the custom node as it is. One body serves both morphs and any K."""

from __future__ import annotations

import onnx
from onnx import AttributeProto, TensorProto, helper

from edgesr.errors import ExportError
from edgesr.spec import DEFAULT_OPSET, DSCONV_DOMAIN, DSCONV_OP_TYPE

MIN_OPSET = 16  # the lowest ONNX opset with GridSample (the function body needs it)


class _Body:
    """Tiny builder for the function body: unique value names, one node per call."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self._count = 0

    def op(self, op_type: str, *inputs: str, **attrs: object) -> str:
        self._count += 1
        out = f"t{self._count}_{op_type}"
        self.nodes.append(
            helper.make_node(op_type, list(inputs), [out], name=f"n{self._count}_{op_type}", **attrs)
        )
        return out

    def ints(self, *values: int) -> str:
        return self.op("Constant", value_ints=list(values))

    def int_scalar(self, value: int) -> str:
        return self.op("Constant", value_int=value)

    def float_scalar(self, value: float) -> str:
        # a typed float32 tensor, not value_float: onnxslim 0.1.98 rewrites value_float
        # constants inside function bodies as float64 tensors, which breaks the body.
        return self.op(
            "Constant", value=helper.make_tensor("value", TensorProto.FLOAT, [], [value])
        )

    def ref_constant(self, attr_type: AttributeProto.AttributeType, value_attr: str, ref: str) -> str:
        """A Constant whose value is the caller's attribute ``ref``."""
        self._count += 1
        out = f"t{self._count}_{ref}"
        node = helper.make_node("Constant", [], [out], name=f"n{self._count}_{ref}")
        node.attribute.append(helper.make_attribute_ref(value_attr, attr_type, ref_attr_name=ref))
        self.nodes.append(node)
        return out


def dsconv_function_proto(opset: int = DEFAULT_OPSET) -> onnx.FunctionProto:
    """The ``edgesr.DynamicSnakeConv`` local function for ONNX opset ``opset`` (>= 16).

    Inputs ``x`` [N,C,H,W], ``offset`` [N,2K,H,W], ``weight`` [O,C,K,1] or [O,C,1,K],
    ``bias`` [O] (required); output ``y`` [N,O,H,W]. Attributes ``kernel_size``, ``morph``
    (int) and ``extend_scope`` (float), referenced from the body, so one body serves both
    morphs and any K:

    Slice the offsets [m·K, m·K+K) -> MatMul with the K x K snake matrix (built from
    Range/compare) -> pixel coordinates from Shape/Range, Where(morph) picks which axis
    moves -> Clip to the image -> normalise for align_corners=1 -> GridSample (bilinear,
    border, align_corners=1) on a [N, K·H, W, 2] grid -> Reshape to [N, C·K, H, W] -> Conv
    with the weight reshaped to [O, C·K, 1, 1] and the bias -> CastLike x.
    """
    if opset < MIN_OPSET:
        raise ExportError(
            f"DynamicSnakeConv's function body needs ONNX opset >= {MIN_OPSET} (GridSample), "
            f"received opset {opset}; export with opset_version={DEFAULT_OPSET}."
        )
    FLOAT = TensorProto.FLOAT
    b = _Body()

    xf = b.op("Cast", "x", to=FLOAT)
    of = b.op("Cast", "offset", to=FLOAT)
    wf = b.op("Cast", "weight", to=FLOAT)
    bf = b.op("Cast", "bias", to=FLOAT)
    k = b.ref_constant(AttributeProto.INT, "value_int", "kernel_size")  # int64 scalar
    m = b.ref_constant(AttributeProto.INT, "value_int", "morph")
    s = b.ref_constant(AttributeProto.FLOAT, "value_float", "extend_scope")
    i0, i1, i2 = b.int_scalar(0), b.int_scalar(1), b.int_scalar(2)
    f0, f1, f2 = b.float_scalar(0.0), b.float_scalar(1.0), b.float_scalar(2.0)
    axis0 = b.ints(0)

    # offsets of the moving axis: channels [m*K, m*K + K)
    start = b.op("Mul", m, k)
    end = b.op("Add", start, k)
    delta = b.op(
        "Slice", of, b.op("Unsqueeze", start, axis0), b.op("Unsqueeze", end, axis0), b.ints(1)
    )  # [N, K, H, W]

    # snake matrix A[k, j]: c < j <= k  or  k <= j < c
    kr = b.op("Range", i0, k, i1)  # [K] int64
    c = b.op("Div", k, i2)
    kcol = b.op("Unsqueeze", kr, b.ints(1))  # [K, 1]
    jrow = b.op("Unsqueeze", kr, axis0)  # [1, K]
    right = b.op("And", b.op("Greater", jrow, c), b.op("LessOrEqual", jrow, kcol))
    left = b.op("And", b.op("Less", jrow, c), b.op("GreaterOrEqual", jrow, kcol))
    snake = b.op("Cast", b.op("Or", right, left), to=FLOAT)  # [K, K]

    # accumulate: [K,K] @ [N, K, H*W]
    acc3 = b.op("MatMul", snake, b.op("Reshape", delta, b.ints(0, 0, -1)))
    acc = b.op("Reshape", acc3, b.op("Shape", delta))  # [N, K, H, W]
    disp = b.op("Mul", acc, s)

    # pixel coordinates
    h = b.op("Gather", b.op("Shape", xf), i2)  # int64 scalar
    w = b.op("Gather", b.op("Shape", xf), b.int_scalar(3))
    ys = b.op("Reshape", b.op("Cast", b.op("Range", i0, h, i1), to=FLOAT), b.ints(1, 1, -1, 1))
    xs = b.op("Reshape", b.op("Cast", b.op("Range", i0, w, i1), to=FLOAT), b.ints(1, 1, 1, -1))
    koff = b.op("Sub", b.op("Cast", kr, to=FLOAT), b.op("Cast", c, to=FLOAT))
    k4 = b.op("Reshape", koff, b.ints(1, -1, 1, 1))
    is_m1 = b.op("Equal", m, i1)
    y = b.op("Where", is_m1, b.op("Add", ys, k4), b.op("Add", ys, disp))  # [N, K, H, W]
    xx = b.op("Where", is_m1, b.op("Add", xs, disp), b.op("Add", xs, k4))
    h_max = b.op("Cast", b.op("Sub", h, i1), to=FLOAT)
    w_max = b.op("Cast", b.op("Sub", w, i1), to=FLOAT)
    y = b.op("Clip", y, f0, h_max)
    xx = b.op("Clip", xx, f0, w_max)

    # normalise for align_corners=1 (Max(., 1) keeps H == 1 / W == 1 finite)
    gy = b.op("Sub", b.op("Div", b.op("Mul", y, f2), b.op("Max", h_max, f1)), f1)
    gx = b.op("Sub", b.op("Div", b.op("Mul", xx, f2), b.op("Max", w_max, f1)), f1)
    last = b.ints(-1)
    grid5 = b.op("Concat", b.op("Unsqueeze", gx, last), b.op("Unsqueeze", gy, last), axis=-1)
    n1 = b.op("Shape", xf, start=0, end=1)
    h1 = b.op("Shape", xf, start=2, end=3)
    w1 = b.op("Shape", xf, start=3, end=4)
    minus1 = b.ints(-1)
    grid = b.op(
        "Reshape", grid5, b.op("Concat", n1, minus1, w1, b.ints(2), axis=0)
    )  # [N, K*H, W, 2], row k*H + i
    sampled = b.op(
        "GridSample", xf, grid, padding_mode="border", align_corners=1
    )  # [N, C, K*H, W]; mode left at its default (bilinear), see the module docstring
    sampled = b.op(
        "Reshape", sampled, b.op("Concat", n1, minus1, h1, w1, axis=0)
    )  # [N, C*K, H, W], channel c*K + k

    # collapse: [O,C,K,1] and [O,C,1,K] both flatten to [O, C*K] in (c, k) order
    w2 = b.op("Reshape", wf, b.ints(0, -1, 1, 1))
    conv = b.op("Conv", sampled, w2, bf)
    b.nodes.append(helper.make_node("CastLike", [conv, "x"], ["y"], name="n_out_CastLike"))

    return helper.make_function(
        DSCONV_DOMAIN,
        DSCONV_OP_TYPE,
        inputs=["x", "offset", "weight", "bias"],
        outputs=["y"],
        nodes=b.nodes,
        opset_imports=[helper.make_opsetid("", opset)],
        attributes=["kernel_size", "morph", "extend_scope"],
        doc_string=(
            "Dynamic snake convolution (edgesr, DESIGN section 3): snake accumulation of "
            "the offsets, clamped bilinear sampling, collapse conv and bias. Standard-op "
            "reference body; a TensorRT plugin edgesr::DynamicSnakeConv may replace it."
        ),
    )
