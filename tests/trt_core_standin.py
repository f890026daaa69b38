"""A stand-in for TensorRT's compiled core (``tensorrt.tensorrt``), just big enough to load
NVIDIA's real ``tensorrt.plugin`` Python sources (from the ``tensorrt-cu12-bindings`` wheel)
and to drive a plugin through the calls TensorRT's builder makes.

Only what the plugin package touches is here: enums, plugin fields, the creator registry,
base classes, and symbolic dimension expressions that fold constants as TensorRT's
IExprBuilder does and can be evaluated for concrete shapes (``Expr.evaluate``).
"""

from __future__ import annotations

import enum
import operator
import types
from typing import Any, Callable

import numpy as np

__version__ = "10.13.0.35-standin"

DataType = enum.Enum("DataType", "FLOAT HALF INT8 INT32 BOOL UINT8 FP8 BF16 INT64 INT4 FP4")
float32, float16, int32 = DataType.FLOAT, DataType.HALF, DataType.INT32
TensorFormat = enum.Enum("TensorFormat", "LINEAR CHW2 HWC8 CHW4 CHW16 CHW32 DHWC8 HWC DLA_LINEAR HWC16")
PluginFieldType = enum.Enum("PluginFieldType", "FLOAT16 FLOAT32 FLOAT64 INT8 INT16 INT32 CHAR DIMS UNKNOWN BF16 INT64 FP8 INT4")
TensorRTPhase = enum.Enum("TensorRTPhase", "BUILD RUNTIME")
QuickPluginCreationRequest = enum.Enum("QuickPluginCreationRequest", "UNKNOWN PREFER_JIT PREFER_AOT STRICT_JIT STRICT_AOT")
PluginArgType = enum.Enum("PluginArgType", "INT")
PluginArgDataType = enum.Enum("PluginArgDataType", "INT8 INT16 INT32")
_OPS: dict[str, Callable[[int, int], int]] = {
    "SUM": operator.add, "PROD": operator.mul, "MAX": max, "MIN": min, "SUB": operator.sub,
    "EQUAL": lambda a, b: int(a == b), "LESS": lambda a, b: int(a < b),
    "FLOOR_DIV": operator.floordiv, "CEIL_DIV": lambda a, b: -(-a // b),
}  # fmt: skip
DimensionOperation = enum.Enum("DimensionOperation", list(_OPS))


class Logger:
    WARNING, ERROR, INFO, VERBOSE = range(4)
    messages: list[str] = []

    def log(self, severity: int, msg: str) -> None:
        self.messages.append(msg)


class IDimensionExpr:
    """A symbolic dimension: a constant, a named symbol (e.g. "H"), or an operation."""

    def __init__(self, value: int | None = None, symbol: str = "", op: Any = None, args: tuple = ()) -> None:
        self.value, self.symbol, self.op, self.args = value, symbol, op, args

    def is_constant(self) -> bool:
        return self.value is not None

    def get_constant_value(self) -> int:
        assert self.value is not None
        return self.value

    def evaluate(self, env: dict[str, int]) -> int:
        if self.value is not None:
            return self.value
        if self.symbol:
            return env[self.symbol]
        return _OPS[self.op.name](*(a.evaluate(env) for a in self.args))


class IExprBuilder:
    def constant(self, value: int) -> IDimensionExpr:
        return IDimensionExpr(int(value))

    def operation(self, op: Any, a: IDimensionExpr, b: IDimensionExpr) -> IDimensionExpr:
        if a.is_constant() and b.is_constant():  # TensorRT folds constants too
            return IDimensionExpr(_OPS[op.name](a.value, b.value))
        return IDimensionExpr(op=op, args=(a, b))


class DimsExprs(list):
    def __init__(self, n: int) -> None:
        super().__init__([None] * n)


class Dims(tuple):
    MAX_DIMS = 8

    def __new__(cls, dims: Any = ()) -> Dims:
        return super().__new__(cls, [] if isinstance(dims, int) else dims)


class PluginTensorDesc:
    def __init__(self) -> None:
        self.type, self.format, self.dims, self.scale = None, TensorFormat.LINEAR, Dims(), 1.0


class DynamicPluginTensorDesc:
    def __init__(self, desc: PluginTensorDesc | None = None) -> None:
        self.desc = desc or PluginTensorDesc()
        self.min = self.max = self.opt = self.desc.dims


class PluginField:
    def __init__(self, name: str, data: Any = None, type: Any = None) -> None:  # noqa: A002
        self.name, self.type = name, type
        self.data = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else np.asarray(data)
        if self.data.size == 1 and not isinstance(data, bytes):
            # NVIDIA's create_plugin calls int()/float() on a scalar field's data, which numpy
            # >= 2.3 allows only for 0-d arrays; the core's own type is not visible from here
            self.data = self.data.reshape(())


class PluginFieldCollection(list):
    pass


class _Base:
    def __init__(self, *args: Any) -> None:
        pass


IPluginV3 = type("IPluginV3", (_Base,), {})
IPluginV3QuickCore = type("IPluginV3QuickCore", (_Base,), {})
IPluginV3QuickBuild = type("IPluginV3QuickBuild", (_Base,), {})
IPluginV3QuickRuntime = type("IPluginV3QuickRuntime", (_Base,), {})
IPluginV3QuickAOTBuild = type("IPluginV3QuickAOTBuild", (_Base,), {})
IPluginCreatorV3Quick = type("IPluginCreatorV3Quick", (_Base,), {})
ISymExpr = type("ISymExpr", (_Base,), {})
ITensor = type("ITensor", (_Base,), {})


class _Registry:
    """TensorRT's plugin registry: creators by (name, version, namespace); a duplicate is
    refused (False), as the real ``register_creator`` does."""

    def __init__(self) -> None:
        self.creators: dict[tuple[str, str, str], Any] = {}

    def register_creator(self, creator: Any, namespace: str) -> bool:
        key = (creator.name, creator.plugin_version, namespace)
        if key in self.creators:
            return False
        self.creators[key] = creator
        return True

    def get_creator(self, name: str, version: str, namespace: str) -> Any:
        return self.creators.get((name, version, namespace))


_REGISTRY = _Registry()


def get_plugin_registry() -> _Registry:
    return _REGISTRY


def as_module() -> types.ModuleType:
    """A fresh ``tensorrt`` package module made of this file's names (fresh registry)."""
    global _REGISTRY
    _REGISTRY = _Registry()
    Logger.messages = []
    mod = types.ModuleType("tensorrt")
    mod.__dict__.update({k: v for k, v in globals().items() if not k.startswith("__")})
    mod.__version__ = __version__
    mod.__path__ = []  # a package, so that `tensorrt.plugin` can be imported beneath it
    return mod
