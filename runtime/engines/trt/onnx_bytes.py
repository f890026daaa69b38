"""Read an edgesr ONNX file as bytes and edit it on protobuf's wire format (no onnx package).

The loader step of the TensorRT path that Polygraphy calls ``BytesFromPath``: TensorRT takes
the model as bytes, and the runtime may not import ``onnx`` (DESIGN section 1). The two things
needed from the file are its ``metadata_props`` (the model spec) and a tag on each
``edgesr::DynamicSnakeConv`` node that makes TensorRT's ONNX parser import it as the plugin
(:func:`mark_plugin_nodes`: without ``plugin_namespace`` the parser looks the plugin up in
namespace "" and expands the local function; ``tests/test_trt_parser_choice.py`` shows it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from edgesr.errors import ModelFileError
from edgesr.spec import DSCONV_DOMAIN, DSCONV_OP_TYPE, DSCONV_PLUGIN_NAMESPACE

__all__ = ["count_plugin_nodes", "mark_plugin_nodes", "read_onnx", "read_onnx_metadata"]


def read_onnx(onnx_path: str | os.PathLike[str]) -> bytes:
    """The file's bytes; ModelFileError (one line) when it is missing or unreadable."""
    path = Path(onnx_path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"ONNX model {path} does not exist; export one with edgesr-export") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read ONNX model {path}: {exc}") from exc


#
# The runtime may not import the `onnx` package (DESIGN section 1), and TensorRT takes the
# model as bytes; the two things needed from the file — its metadata_props and a tag on the
# DynamicSnakeConv nodes — are read and written here directly on protobuf's wire format.
# ModelProto: graph = 7, metadata_props = 14 (key = 1, value = 2). GraphProto: node = 1.
# NodeProto: op_type = 4, attribute = 5, domain = 7. AttributeProto: name = 1, i = 3,
# s = 4, type = 20 (INT = 2, STRING = 3).

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ModelFileError("truncated protobuf varint; the ONNX file is damaged")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ModelFileError("malformed protobuf varint; the ONNX file is damaged")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, start of the field, start of its value, end), in order.

    For length-delimited fields the value span is the payload; for varints it is the
    encoded varint."""
    pos = 0
    end = len(buf)
    while pos < end:
        start = pos
        tag, pos = _read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            value_start = pos
            _, pos = _read_varint(buf, pos)
        elif wire == _I64:
            value_start, pos = pos, pos + 8
        elif wire == _I32:
            value_start, pos = pos, pos + 4
        elif wire == _LEN:
            length, value_start = _read_varint(buf, pos)
            pos = value_start + length
        else:
            raise ModelFileError(f"unsupported protobuf wire type {wire}; not an ONNX model")
        if pos > end:
            raise ModelFileError("truncated protobuf field; the ONNX file is damaged")
        yield number, wire, start, value_start, pos


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint((number << 3) | _LEN) + _encode_varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _encode_varint((number << 3) | _VARINT) + _encode_varint(value)


def _string_attribute(name: str, value: str) -> bytes:
    return _len_field(1, name.encode()) + _len_field(4, value.encode()) + _varint_field(20, 3)


def _int_attribute(name: str, value: int) -> bytes:
    return _len_field(1, name.encode()) + _varint_field(3, value) + _varint_field(20, 2)


def read_onnx_metadata(model: bytes) -> dict[str, str]:
    """The ``metadata_props`` of a serialized ONNX ModelProto (no onnx package needed)."""
    buf = memoryview(model)
    meta: dict[str, str] = {}
    for number, wire, _, vs, ve in _fields(buf):
        if number == 14 and wire == _LEN:
            key = value = ""
            for sub, sub_wire, _, svs, sve in _fields(buf[vs:ve]):
                if sub_wire != _LEN:
                    continue
                text = bytes(buf[vs + svs : vs + sve]).decode("utf-8", errors="replace")
                if sub == 1:
                    key = text
                elif sub == 2:
                    value = text
            meta[key] = value
    return meta


def _node_matches(node: memoryview, *, domain: str, op_type: str) -> tuple[bool, set[str]]:
    node_op = node_domain = ""
    attrs: set[str] = set()
    for number, wire, _, vs, ve in _fields(node):
        if wire != _LEN:
            continue
        if number == 4:
            node_op = bytes(node[vs:ve]).decode("utf-8", errors="replace")
        elif number == 7:
            node_domain = bytes(node[vs:ve]).decode("utf-8", errors="replace")
        elif number == 5:
            for sub, sub_wire, _, svs, sve in _fields(node[vs:ve]):
                if sub == 1 and sub_wire == _LEN:
                    attrs.add(bytes(node[vs + svs : vs + sve]).decode("utf-8", errors="replace"))
    return node_op == op_type and node_domain == domain, attrs


def count_plugin_nodes(model: bytes) -> int:
    """How many ``edgesr::DynamicSnakeConv`` nodes the main graph has."""
    buf = memoryview(model)
    count = 0
    for number, wire, _, vs, ve in _fields(buf):
        if number == 7 and wire == _LEN:
            graph = buf[vs:ve]
            for g_num, g_wire, _, gvs, gve in _fields(graph):
                if g_num == 1 and g_wire == _LEN:
                    match, _ = _node_matches(graph[gvs:gve], domain=DSCONV_DOMAIN, op_type=DSCONV_OP_TYPE)
                    count += match
    return count


def mark_plugin_nodes(model: bytes, *, aot: bool | None) -> tuple[bytes, int]:
    """Tag every ``edgesr::DynamicSnakeConv`` node of the main graph for TensorRT's parser.

    Adds ``plugin_namespace="edgesr"`` (and ``aot`` = 1/0 unless ``aot`` is None) to each such
    node that lacks them; everything else is copied byte for byte. Returns the new
    serialized model and the number of nodes tagged.
    """
    buf = memoryview(model)
    out = bytearray()
    tagged = 0
    for number, wire, start, vs, ve in _fields(buf):
        if not (number == 7 and wire == _LEN):
            out += buf[start:ve]
            continue
        graph = buf[vs:ve]
        new_graph = bytearray()
        for g_num, g_wire, g_start, gvs, gve in _fields(graph):
            if not (g_num == 1 and g_wire == _LEN):
                new_graph += graph[g_start:gve]
                continue
            node = graph[gvs:gve]
            match, attrs = _node_matches(node, domain=DSCONV_DOMAIN, op_type=DSCONV_OP_TYPE)
            if not match:
                new_graph += graph[g_start:gve]
                continue
            extra = b""
            if "plugin_namespace" not in attrs:
                extra += _len_field(5, _string_attribute("plugin_namespace", DSCONV_PLUGIN_NAMESPACE))
            if aot is not None and "aot" not in attrs:
                extra += _len_field(5, _int_attribute("aot", int(aot)))
            tagged += bool(extra)
            new_graph += _len_field(1, bytes(node) + extra)
        out += _len_field(7, bytes(new_graph))
    return bytes(out), tagged

