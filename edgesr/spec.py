"""What every layer must agree on (standard library only, no torch).

The ONNX metadata keys, the DSConv custom-op identity, and the small
``ModelSpec`` that the runtime rebuilds from an ONNX file without any model code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edgesr.errors import ModelFileError

Precision = Literal["fp32", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16")

# Keys of ONNX ``metadata_props`` written by export and read by the runtime.
METADATA_PREFIX = "edgesr."
META_ARCH = METADATA_PREFIX + "arch"
META_SCALE = METADATA_PREFIX + "scale"
META_VERSION = METADATA_PREFIX + "version"
META_PRECISION = METADATA_PREFIX + "precision"
META_INPUT_RANGE = METADATA_PREFIX + "input_range"
META_SIZE_MULTIPLE = METADATA_PREFIX + "size_multiple"
META_TILE_PX = METADATA_PREFIX + "tile_px"
META_OVERLAP_PX = METADATA_PREFIX + "overlap_px"
META_WEIGHTS_HASH = METADATA_PREFIX + "weights_sha256"
META_MIN_SIZE = METADATA_PREFIX + "min_size_px"  # smallest input side (ESA pooling needs 15)

# The model edgesr-run uses without --model (its ONNX ships in edgesr/weights): the shipped
# x4 model with the highest Set5 PSNR (tests/test_shipped_weights.py recomputes it).
DEFAULT_MODEL = "lkdn_x4"

# Graph I/O names (DESIGN section 6).
INPUT_NAME = "lr"
OUTPUT_NAME = "sr"
DEFAULT_OPSET = 18  # TensorRT mis-executes GridSample at opset 20

# The dynamic snake convolution custom op (ONNX node, local function, TRT plugin).
DSCONV_DOMAIN = "edgesr"
DSCONV_OP_TYPE = "DynamicSnakeConv"
DSCONV_OP_VERSION = 1
DSCONV_PLUGIN_NAMESPACE = "edgesr"
DSCONV_PLUGIN_VERSION = "1"


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What the runtime needs to know about an SR model, read from ONNX metadata."""

    arch: str
    scale: int
    precision: str = "fp32"
    input_range: str = "0,1"
    size_multiple: int = 1
    min_size_px: int = 1
    tile_px: int = 256
    overlap_px: int = 16
    edgesr_version: str = ""
    weights_sha256: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` entries that describe this spec."""
        return {
            META_ARCH: self.arch,
            META_SCALE: str(self.scale),
            META_VERSION: self.edgesr_version,
            META_PRECISION: self.precision,
            META_INPUT_RANGE: self.input_range,
            META_SIZE_MULTIPLE: str(self.size_multiple),
            META_MIN_SIZE: str(self.min_size_px),
            META_TILE_PX: str(self.tile_px),
            META_OVERLAP_PX: str(self.overlap_px),
            META_WEIGHTS_HASH: self.weights_sha256,
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], *, source: str) -> ModelSpec:
        """Rebuild a spec from ``metadata_props``; ``source`` names the file in errors."""
        if META_SCALE not in metadata:
            raise ModelFileError(
                f"{source} has no edgesr metadata (no {META_SCALE!r}); it was not exported by "
                "edgesr-export: pass --scale to say its upscaling factor"
            )

        from edgesr.metadata_bounds import metadata_int  # each key within its valid range

        def integer(key: str, default: int) -> int:
            return metadata_int(metadata, key, default, source=source)

        return cls(
            arch=metadata.get(META_ARCH, "unknown"),
            scale=integer(META_SCALE, 0),
            precision=metadata.get(META_PRECISION, "fp32"),
            input_range=metadata.get(META_INPUT_RANGE, "0,1"),
            size_multiple=integer(META_SIZE_MULTIPLE, 1),
            min_size_px=integer(META_MIN_SIZE, 1),
            tile_px=integer(META_TILE_PX, 256),
            overlap_px=integer(META_OVERLAP_PX, 16),
            edgesr_version=metadata.get(META_VERSION, ""),
            weights_sha256=metadata.get(META_WEIGHTS_HASH, ""),
            extra={k: v for k, v in metadata.items() if not k.startswith(METADATA_PREFIX)},
        )
