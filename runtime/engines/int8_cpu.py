"""Which CPUs run int8 convolutions with saturating int16 sums, and which graphs are INT8.

x86 CPUs without VNNI or AMX have no int8 dot product that sums in int32: oneDNN (OpenVINO) and
ONNX Runtime's kernels multiply u8 x s8 with ``vpmaddubsw``, which adds each pair of products
into a saturating int16 (255 * 127 * 2 > 32767). Intel's OpenVINO documentation ("Saturation
(overflow) issue workaround") and ONNX Runtime's quantization guide (``reduce_range``: 7-bit
weights "for the U8S8 format on AVX2 and AVX512 (non-VNNI) machines") describe it. Measured on
this project's AVX2 machine (AMD EPYC, no VNNI): lkdn_x4 with every Conv INT8 scores 10.56 dB
against FP32 through ONNX Runtime's int8 kernels and 35.00 dB in exact QDQ arithmetic
(``session.disable_quant_qdq``), the figure a VNNI machine gave with the kernels (docs/int8.md).
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

#: /proc/cpuinfo flags of the int8 dot-product instructions that sum in int32 (no saturation).
INT8_DOT_PRODUCT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def saturating_int8_cpu(cpuinfo: str | None = None) -> bool:
    """True on an x86 CPU without an int8 dot product that sums in int32 (VNNI, AMX): there
    OpenVINO's int8 convolutions add pairs of products in saturating int16. ``cpuinfo`` is the
    text of /proc/cpuinfo (read when None); an x86 CPU whose flags cannot be read counts as
    saturating (the safe answer costs speed or a little precision; a saturated conv costs
    decibels)."""
    if cpuinfo is None:
        if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
            return False
        cpuinfo = _host_cpuinfo()
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return not flags or not (flags & INT8_DOT_PRODUCT_FLAGS)


@functools.cache
def _host_cpuinfo() -> str:
    """/proc/cpuinfo, read once per process ("" when unreadable: no flags, so saturating)."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def is_qdq_graph(model_path: Path) -> bool:
    """True when the ONNX file holds Q/DQ nodes (an ``edgesr-export --int8`` graph). The op
    type is a plain string in the protobuf, so the bytes tell without the onnx package."""
    return b"DequantizeLinear" in Path(model_path).read_bytes()
