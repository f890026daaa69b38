"""The valid range of each number an exported model's ``edgesr.*`` metadata holds.

An .onnx file is input like any other: a metadata scale of 1e20 or a tile advice of -5 must
be refused in one line naming the key and its range, not turned into a tile of -199712 px or
"1.02e38 MB is needed" further on. The ranges are wide on purpose (far beyond any model
edgesr exports, which writes scale 2-4, tile 256, overlap 16, min size <= 15) and narrow
enough that no arithmetic on them overflows a budget or a TensorRT profile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from edgesr.errors import ModelFileError

#: key -> (lowest, highest) accepted value, both included.
METADATA_INT_RANGES: dict[str, tuple[int, int]] = {
    "edgesr.scale": (1, 16),
    "edgesr.size_multiple": (1, 1024),
    "edgesr.min_size_px": (1, 1024),
    "edgesr.tile_px": (1, 8192),
    "edgesr.overlap_px": (0, 1024),
}
_SHOWN_CHARS = 40  # of a bad value in the message: a planted 1 MB string stays one short line


def metadata_int(metadata: Mapping[str, str], key: str, default: int, *, source: str) -> int:
    """``metadata[key]`` as an integer within :data:`METADATA_INT_RANGES` (``default`` when the
    key is absent or empty), else a one-line :class:`ModelFileError` naming the key and range."""
    raw = metadata.get(key, "")
    if raw == "":
        return default
    low, high = METADATA_INT_RANGES[key]
    text = raw.strip()
    value = int(text) if re.fullmatch(r"[+-]?[0-9]{1,19}", text) else None  # no "1e20", no "²"
    if value is None or not low <= value <= high:
        shown = raw if len(raw) <= _SHOWN_CHARS else raw[:_SHOWN_CHARS] + "..."
        raise ModelFileError(
            f"{source}: metadata {key}={shown!r} is out of range, expected an integer from {low} "
            f"to {high}; the file was not written by edgesr-export or was altered: re-export it"
        )
    return value
