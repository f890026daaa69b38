"""The measured sensitivity pass: which convolutions stay float so INT8 keeps the quality.

Quantizing every convolution costs SR models too much (the shipped LKDN x4: about 35 dB
against its FP32 graph on held-out photo tiles, 1.7 dB lost on Set5). The cost is concentrated: the
convolutions on the image-space trunk (the shallow feature conv, the fusion convs and the
upsampler, whose output is the image itself) and, in LKDN, the large-kernel attention's
dilated conv and the expand conv that reads its product (values of 1e9-1e10 before the
LayerNorm, see ``fp16_range.py``; the LayerNorm divides each pixel by its own spread, so the
per-tensor 8-bit grid's error in the small pixels comes back full size). Which ones is
measured, not guessed:

1. one calibrated QDQ graph of the whole model (``int8_quantize.quantize_qdq``);
2. the convolutions are grouped by *role*: the node name with list indices dropped
   (``/blocks.3/cell/dw_dilated/Conv`` -> ``/blocks/cell/dw_dilated/Conv``), one group for
   that layer in every block, so a model of any depth has a few dozen groups at most;
3. each role is scored alone: the graph where only that role is INT8, PSNR against FP32 on
   the scoring tiles, photo tiles held out from calibration (derived from the full QDQ graph
   by bypassing the other roles' Q/DQ: one ONNX Runtime run per role, not one quantization);
4. the costliest roles are kept float until the whole graph reaches ``target_db`` against
   FP32 on the scoring tiles: first as many as the roles' errors, added in mean square,
   predict, then one more at a time while a run says the target is missed (the errors of
   SR layers add more than in mean square: a corrupted trunk feeds every block).

LayerNorm, CCA statistics, GELU and the other elementwise ops are never quantized
(``QUANTIZED_OPS``), so the pass only chooses among convolutions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from edgesr.export.parity import onnx_session, run_onnx
from edgesr.metrics import psnr

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeptGroup:
    """A group of convolutions kept float, and what INT8 cost when only it was quantized."""

    scope: str  # the role, "/blocks/cell/dw_dilated/Conv"
    nodes: tuple[str, ...]  # its Conv node names
    alone_db: float  # PSNR vs FP32 (scoring tiles) with only this group INT8

    def line(self) -> str:
        return f"{self.scope} ({len(self.nodes)} Conv): alone INT8 {self.alone_db:.1f} dB vs FP32"


def conv_groups(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Conv node names by role, the name without list indices: ``/blocks.0/cell/pw/Conv`` and
    ``/blocks.7/cell/pw/Conv`` -> ``/blocks/cell/pw/Conv``; graph order."""
    groups: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.op_type == "Conv":
            groups.setdefault(re.sub(r"\.\d+(?=/)", "", node.name), []).append(node.name)
    return groups


def float_except(qdq: onnx.ModelProto, fp32: onnx.ModelProto, int8_nodes: set[str]) -> onnx.ModelProto:
    """``qdq`` with every Conv outside ``int8_nodes`` reading its float input and float weight
    again (its Q/DQ bypassed; the unused Q/DQ nodes are left for ONNX Runtime to prune)."""
    out = onnx.ModelProto()
    out.CopyFrom(qdq)
    producer = {o: n for n in out.graph.node for o in n.output}
    float_conv = {n.name: n for n in fp32.graph.node if n.op_type == "Conv"}
    have = {i.name for i in out.graph.initializer}
    fp32_init = {i.name: i for i in fp32.graph.initializer}
    for node in out.graph.node:
        if node.op_type != "Conv" or node.name in int8_nodes or node.name not in float_conv:
            continue
        dq = producer.get(node.input[0])
        if dq is not None and dq.op_type == "DequantizeLinear":
            q = producer.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[0] = q.input[0]
        weight = float_conv[node.name].input[1]
        node.input[1] = weight
        if weight not in have and weight in fp32_init:
            out.graph.initializer.append(fp32_init[weight])
            have.add(weight)
    return out


def psnr_vs_fp32(model: onnx.ModelProto, tiles: np.ndarray, reference: np.ndarray) -> float:
    """PSNR (data range 1) of ``model`` on the batch ``tiles`` against the clipped FP32 output."""
    return psnr(run_onnx(onnx_session(model), tiles), reference, data_range=1.0)


def choose_float_groups(
    fp32: onnx.ModelProto, qdq_all: onnx.ModelProto, tiles: np.ndarray, *, target_db: float,
    requantize: Callable[[list[str]], onnx.ModelProto],
) -> tuple[onnx.ModelProto, list[KeptGroup], float]:
    """The INT8 graph that reaches ``target_db`` vs FP32 on ``tiles`` (a batch held out from
    calibration), the groups
    kept float (costliest first) and the PSNR it reached. ``requantize(keep_float)`` makes the
    real graph with those Conv nodes left float (ONNX Runtime's quantizer)."""
    reference = np.clip(run_onnx(onnx_session(fp32), tiles), 0.0, 1.0)
    reached = psnr_vs_fp32(qdq_all, tiles, reference)
    log.info("INT8: all Conv INT8: %.2f dB vs FP32 on the scoring tiles (target %.1f)",
             reached, target_db)
    if reached >= target_db:
        return qdq_all, [], reached
    groups = conv_groups(fp32)
    alone: dict[str, float] = {}
    for count, (scope, nodes) in enumerate(groups.items(), 1):  # minutes on a full-size model
        alone[scope] = psnr_vs_fp32(float_except(qdq_all, fp32, set(nodes)), tiles, reference)
        log.debug("INT8: group %d/%d %s alone %.2f dB", count, len(groups), scope, alone[scope])
    order = sorted(groups, key=lambda scope: alone[scope])  # lowest PSNR = costliest first
    kept = _predicted_float_groups(order, alone, reached, target_db)
    while True:  # the prediction checked by a run, one more group at a time if it fell short
        int8 = {n for s in order if s not in kept for n in groups[s]}
        reached = psnr_vs_fp32(float_except(qdq_all, fp32, int8), tiles, reference)
        log.info("INT8: %d group(s) kept float -> %.2f dB", len(kept), reached)
        if reached >= target_db or len(kept) == len(order):
            break
        kept.append(order[len(kept)])
    float_nodes = [n for scope in kept for n in groups[scope]]
    model = requantize(float_nodes)  # the real graph from the quantizer, measured again
    reached = psnr_vs_fp32(model, tiles, reference)
    return model, [KeptGroup(s, tuple(groups[s]), alone[s]) for s in kept], reached


def _mse(db: float) -> float:
    return 10.0 ** (-db / 10.0)


def _predicted_float_groups(order: list[str], alone: dict[str, float], all_db: float,
                            target_db: float) -> list[str]:
    """The costliest groups to keep float so that the error left reaches ``target_db``,
    predicted by adding each group's error alone (scaled so the sum matches the whole graph's
    error: the groups' errors are close to independent noise, which adds in mean square)."""
    alone_mse = {s: _mse(alone[s]) for s in order}
    scale = _mse(all_db) / max(sum(alone_mse.values()), 1e-30)
    left = _mse(all_db)
    kept: list[str] = []
    for scope in order:
        if left <= _mse(target_db):
            break
        kept.append(scope)
        left -= alone_mse[scope] * scale
    return kept
