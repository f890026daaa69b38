"""FP16 ONNX graphs with float32 I/O and an FP32 block list (DESIGN section 7).

TensorRT 11 builds strongly-typed networks only (``BuilderFlag.FP16`` is gone): the precision
of every tensor must be written in the graph, and every op must see inputs of one float type.
:func:`fp16_from_onnx` writes such a graph:

* weights and activations in float16, the graph input ``lr`` and output ``sr`` float32 (a Cast
  after the input, one before the output);
* these stay float32, with Cast nodes at the block boundaries (:data:`FP32_OP_TYPES`):
  the ``edgesr::DynamicSnakeConv`` node (its local-function body is left exactly as it is: it
  casts its inputs to float32 itself, so GridSample and the coordinate math inside run in
  float32), GridSample, Resize, reductions (ReduceMean: norm and CCA mean/std statistics),
  Pow and Sqrt (variance and std), BatchNormalization / InstanceNormalization (GroupNorm as
  exported) / LayerNormalization / GroupNormalization, Range and CumSum;
* the arithmetic around those statistics stays float32 too (:func:`fp32_node_names`):
  ``x - mean`` and ``d / std`` (a Sub or Div whose second operand is float32), and the
  element-wise / reshaping ops whose every activation input is already float32 (``var + eps``,
  a norm's affine ``* gamma + beta``, the DSConv offsets' GroupNorm -> affine -> tanh chain,
  so the offsets reach the snake sampler in float32). The closure stops at the first op that
  also reads a float16 tensor (a residual add), a convolution or an activation;
* explicit ``Cast(to=FLOAT)`` nodes (an inlined DynamicSnakeConv body, hand-written float32
  islands) start a float32 island that extends to every node whose activation inputs all come
  from the island: an inlined DSConv body (coordinate math, GridSample, collapse conv) stays
  float32 up to its closing CastLike.

The conversion itself is onnxconverter-common's ``float16.convert_float_to_float16``
(``keep_io_types=True`` and the block lists above). It was checked on edgesr's graphs, local
function and custom domain included: it leaves ``model.functions`` untouched, inserts Casts
around blocked nodes from the inferred value types (onnx shape inference types the custom
node through its function), and sorts the graph. ONNX Runtime's own copy of the converter
(``onnxruntime.transformers.float16``) was not usable: it leaves the graph unsorted and names
two inserted Casts alike on these models. Blind spots of the converter are guarded here, not
trusted: nodes get unique names first (Cast names derive from them), and the result is
verified to be strongly typed (:func:`mixed_precision_nodes`, strict onnx type inference);
a graph that is not raises :class:`~edgesr.errors.ExportError`.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Iterable

import onnx
from onnx import TensorProto

from edgesr.errors import ExportError
from edgesr.export.fp16_casts import bypass_cast_round_trips
from edgesr.export.fp16_verify import (FLOATS, float_io, mixed_precision_nodes,  # noqa: F401 (re-exported)
                                       value_types, verify_fp16_graph)
from edgesr.spec import DSCONV_DOMAIN, DSCONV_OP_TYPE

__all__ = [
    "FP32_OP_TYPES",
    "convert_to_fp16",
    "fp16_from_onnx",
    "fp32_node_names",
    "mixed_precision_nodes",
    "node_labels",
    "sorted_counts",
    "verify_fp16_graph",
]

logger = logging.getLogger(__name__)

# Op types computed in float32 in an FP16 graph (DESIGN section 7).
FP32_OP_TYPES: frozenset[str] = frozenset({
    DSCONV_OP_TYPE,  # edgesr::DynamicSnakeConv: grid math + GridSample in its body
    "GridSample",
    "Resize",
    "Upsample",
    # normalization layers and their statistics
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
    "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceProd", "ReduceMax", "ReduceMin",
    "Pow", "Sqrt",
    "GlobalAveragePool",  # CCA's spatial mean and std in the deployment form (edgesr.models.deploy)
    # index / coordinate generation
    "Range", "CumSum",
})

# Ops that continue a float32 statistics chain when all their activation inputs are float32.
_CHAIN_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Sqrt", "Reciprocal", "Neg", "Abs", "Clip", "Max", "Min",
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Tanh", "Identity",
})
# Binary ops that go float32 when their SECOND operand is float32: x - mean, d / std.
_STAT_OPERAND_OPS = frozenset({"Sub", "Div"})


def _ensure_unique_names(model: onnx.ModelProto) -> None:
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        while name in seen:
            name = f"{name}_{i}"
        node.name = name
        seen.add(name)


def _constant_floats_as_tensors(model: onnx.ModelProto) -> None:
    """``Constant(value_float=...)`` / ``value_floats`` -> a float32 ``value`` tensor: the
    converter only rewrites tensor attributes, and would otherwise retype the output alone."""
    for node in model.graph.node:
        if node.op_type != "Constant" or len(node.attribute) != 1:
            continue
        attr = node.attribute[0]
        if attr.ref_attr_name:
            continue
        if attr.name == "value_float":
            tensor = onnx.helper.make_tensor("value", TensorProto.FLOAT, [], [attr.f])
        elif attr.name == "value_floats":
            tensor = onnx.helper.make_tensor("value", TensorProto.FLOAT, [len(attr.floats)], list(attr.floats))
        else:
            continue
        del node.attribute[:]
        node.attribute.append(onnx.helper.make_attribute("value", tensor))


def _split_shared_initializers(model: onnx.ModelProto, fp32_nodes: set[str]) -> None:
    """Give float32 nodes their own copy of a float initializer that float16 nodes read too.

    onnxconverter-common keeps an initializer float32 when any blocked node reads it, and
    then a float16 reader gets a float32 input (the exporter merges equal tensors, e.g. the
    zero biases of several norms, so such sharing is common in unsimplified graphs).
    """
    inits = {t.name: t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            if name in inits:
                readers.setdefault(name, []).append(node)
    for name, nodes in readers.items():
        blocked = [n for n in nodes if n.name in fp32_nodes]
        if not blocked or len(blocked) == len(nodes):
            continue
        copy = onnx.TensorProto()
        copy.CopyFrom(inits[name])
        copy.name = f"{name}__fp32"
        model.graph.initializer.append(copy)
        for node in blocked:
            for i, value in enumerate(node.input):
                if value == name:
                    node.input[i] = copy.name


def _is_fp32_op(node: onnx.NodeProto) -> bool:
    if node.op_type == DSCONV_OP_TYPE:
        return node.domain == DSCONV_DOMAIN
    return node.domain in ("", "ai.onnx") and node.op_type in FP32_OP_TYPES


def _is_cast_to_float(node: onnx.NodeProto) -> bool:
    return node.op_type == "Cast" and any(
        a.name == "to" and a.i == TensorProto.FLOAT for a in node.attribute
    )


def fp32_node_names(model: onnx.ModelProto) -> list[str]:
    """Names of the main-graph nodes an FP16 conversion keeps in float32 (module docstring).

    Nodes must have unique names (:func:`fp16_from_onnx` names them first).
    """
    constants = {i.name for i in model.graph.initializer}
    constants.update(o for n in model.graph.node if n.op_type == "Constant" for o in n.output)
    producer = {o: n for n in model.graph.node for o in n.output}
    types = value_types(model)

    def is_float(value: str) -> bool:  # unknown types count as float (conservative)
        return types.get(value, TensorProto.FLOAT) in FLOATS

    stat: set[str] = set()  # float32 statistic / block-list values
    island: set[str] = set()  # values of explicit float32 islands (after Cast(to=FLOAT))
    chosen: list[str] = []
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        if node.input and all(i in constants for i in node.input if i):
            constants.update(node.output)  # computed from weights only (unsimplified graphs)
        # float activations only: shape/index inputs (int64) and weights do not decide
        acts = [i for i in node.input if i and i not in constants and i in producer and is_float(i)]
        if _is_cast_to_float(node):
            island.update(node.output)
            chosen.append(node.name)
            continue
        if acts and all(a in island for a in acts) and node.op_type not in ("Cast", "CastLike"):
            island.update(node.output)
            chosen.append(node.name)
            continue
        fp32 = _is_fp32_op(node)
        if not fp32 and node.op_type in _CHAIN_OPS and acts:
            fp32 = all(a in stat for a in acts)
        if (
            not fp32
            and node.op_type in _STAT_OPERAND_OPS
            and len(node.input) == 2
            and node.input[1] in stat
        ):
            fp32 = True
        if fp32:
            stat.update(node.output)
            chosen.append(node.name)
    # constants read only by float32 nodes stay float32 (no float16 round trip)
    fp32_names = set(chosen)
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node.name)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output and node.name not in fp32_names:
            users = consumers.get(node.output[0], [])
            if users and all(u in fp32_names for u in users):
                chosen.append(node.name)
    return chosen


def fp16_from_onnx(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """An FP16 copy of an FP32 ``model`` (float32 I/O), and the nodes computed in float32
    as ``"name (OpType)"`` (Constant nodes left out).

    See the module docstring for what stays float32. Raises ExportError when the model is
    already float16, or when the result would not be strongly typed.
    """
    out, kept = convert_to_fp16(model)
    verify_fp16_graph(out)
    return out, node_labels(kept)


def node_labels(nodes: Iterable[tuple[str, str]]) -> list[str]:
    """``(name, op_type)`` pairs as the ``"name (OpType)"`` strings edgesr-export prints."""
    return [f"{name} ({op_type})" for name, op_type in nodes]


def sorted_counts(values: Iterable[str]) -> dict[str, int]:
    """``{value: count}``, most frequent first (ties by value): op-type tallies."""
    counts = Counter(values)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def convert_to_fp16(model: onnx.ModelProto, *, fp32_scopes: Iterable[str] = ()
                    ) -> tuple[onnx.ModelProto, list[tuple[str, str]]]:
    """:func:`fp16_from_onnx` without the verification (:func:`verify_fp16_graph`), for a
    caller that edits the graph further and verifies the final one; the float32 nodes as
    ``(name, op_type)`` pairs. Nodes whose names start with one of ``fp32_scopes`` (e.g.
    ``/blocks.1/cell/``, from :func:`edgesr.export.fp16_range.fp32_scopes`) stay float32 too."""
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise ExportError(
            "FP16 export needs onnxconverter-common, which is not installed; "
            "pip install 'onnxconverter-common>=1.14' (or edgesr[export])."
        ) from None
    if float_io(model):
        raise ExportError(
            f"expected an FP32 model with float32 inputs/outputs; {float_io(model)} are not "
            "float32. Pass the FP32 export to fp16_from_onnx."
        )
    work = onnx.ModelProto()
    work.CopyFrom(model)
    del work.graph.value_info[:]  # stale shapes from the exporter/simplifier: re-infer
    _ensure_unique_names(work)
    _constant_floats_as_tensors(work)
    kept = fp32_node_names(work)
    scopes = tuple(fp32_scopes)
    if scopes:
        kept += [n.name for n in work.graph.node if n.name.startswith(scopes) and n.name not in set(kept)]
    ops = sorted(FP32_OP_TYPES | set(float16.DEFAULT_OP_BLOCK_LIST))
    _split_shared_initializers(
        work, set(kept) | {n.name for n in work.graph.node if n.op_type in ops}
    )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            out = float16.convert_float_to_float16(
                work,
                keep_io_types=True,
                op_block_list=ops,
                node_block_list=kept,
                check_fp16_ready=True,
            )
    except ValueError as exc:
        raise ExportError(
            f"FP16 conversion failed ({exc}); expected an FP32 graph. Pass the FP32 export."
        ) from None
    if caught:  # "the float32 number 5e-08 will be truncated to 1e-07", one per value
        logger.debug("fp16: %d weights clamped to the float16-safe range [1e-7, 1e4] in "
                     "magnitude (e.g. %s)", len(caught), caught[0].message)
    removed = bypass_cast_round_trips(out, value_types(out))
    logger.debug("fp16: %d float32 -> float16 -> float32 round trips removed", removed)
    blocked = set(kept)
    listing = [  # computations only: Constant nodes kept float32 hold values
        (n.name, n.op_type)
        for n in out.graph.node
        if n.op_type != "Constant"
        and (n.name in blocked or (n.op_type in ops and n.domain in ("", "ai.onnx", DSCONV_DOMAIN)))
    ]
    logger.info("fp16: %d of %d nodes kept float32", len(listing), len(out.graph.node))
    return out, listing
