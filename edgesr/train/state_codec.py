"""Training state as safetensors + JSON: nested Python values without pickle.

A checkpoint's optimizer, scheduler and RNG states are nested dicts, lists and tuples of
numbers, strings, tensors and (numpy's RNG) arrays. Pickling them (``torch.save``) would make
a planted ``state.pt`` code that runs at resume, so they are split instead:

- every tensor and array goes to a safetensors file under a generated name (``t0``, ``t1``…);
- the structure goes to JSON, where a tensor is ``{"__tensor__": "t0"}``, an array
  ``{"__ndarray__": "t1", "dtype": "uint32"}``, a tuple ``{"__tuple__": [...]}`` and a dict
  ``{"__dict__": [[key, value], ...]}`` (keys may be ints: an optimizer's state is keyed by
  parameter index).

Floats go through ``repr`` (Python's JSON), so they come back bit for bit. Decoding accepts
exactly these forms and raises :class:`~edgesr.errors.WeightsError` on anything else.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from edgesr.errors import WeightsError

TENSOR, NDARRAY, TUPLE, DICT = "__tensor__", "__ndarray__", "__tuple__", "__dict__"
#: numpy dtypes an array may have (numpy's MT19937 state is uint32); stored as int64 tensors.
ARRAY_DTYPES = ("uint32", "int64", "float64")
MAX_DEPTH = 32  # optimizer states nest 4 deep; deeper is not a state of ours


def encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` as JSON-able data; its tensors and arrays are added to ``tensors``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().cpu().contiguous().clone()  # safetensors refuses shared storage
        return {TENSOR: name}
    if isinstance(value, np.ndarray):
        if value.dtype.name not in ARRAY_DTYPES:
            raise TypeError(f"cannot store a numpy array of {value.dtype} in a checkpoint")
        name = f"t{len(tensors)}"
        tensors[name] = torch.from_numpy(value.astype(np.int64 if value.dtype.kind in "ui" else np.float64))
        return {NDARRAY: name, "dtype": value.dtype.name}
    if isinstance(value, tuple):
        return {TUPLE: [encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [encode(v, tensors) for v in value]
    if isinstance(value, dict):
        return {DICT: [[encode(k, tensors), encode(v, tensors)] for k, v in value.items()]}
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint")


def decode(data: Any, tensors: dict[str, torch.Tensor], *, where: str, depth: int = 0) -> Any:
    """The inverse of :func:`encode`; ``where`` names the file in errors."""
    if depth > MAX_DEPTH:
        raise _malformed(where, f"nested deeper than {MAX_DEPTH} levels")
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(v, tensors, where=where, depth=depth + 1) for v in data]
    if not isinstance(data, dict) or len(data) not in (1, 2):
        raise _malformed(where, f"unexpected value {_short(data)}")
    if len(data) == 1 and TENSOR in data:
        return _tensor(data[TENSOR], tensors, where)
    if set(data) == {NDARRAY, "dtype"} and data["dtype"] in ARRAY_DTYPES:
        return _tensor(data[NDARRAY], tensors, where).numpy().astype(data["dtype"])
    if len(data) == 1 and isinstance(data.get(TUPLE), list):
        return tuple(decode(v, tensors, where=where, depth=depth + 1) for v in data[TUPLE])
    if len(data) == 1 and isinstance(data.get(DICT), list):
        out = {}
        for pair in data[DICT]:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (int, str))):
                raise _malformed(where, f"a dict entry {_short(pair)} is not a [key, value] pair")
            out[pair[0]] = decode(pair[1], tensors, where=where, depth=depth + 1)
        return out
    raise _malformed(where, f"unexpected value {_short(data)}")


def _tensor(name: object, tensors: dict[str, torch.Tensor], where: str) -> torch.Tensor:
    if not isinstance(name, str) or name not in tensors:
        raise _malformed(where, f"it names a tensor {_short(name)} that the safetensors file lacks")
    return tensors[name]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _malformed(where: str, detail: str) -> WeightsError:
    return WeightsError(f"{where} is not a training state edgesr wrote ({detail}); delete the "
                        "checkpoint or rerun with --restart")
