"""The output's size, checked against a budget before any work (issue 16).

``--max-pixels`` bounds what is read; an input within it can still ask for an output no
machine holds: 64 MP at x4 is 1,024 MP, 12 GB as the float32 RGB the engines return. So the
output's size, width x height x scale² x channels x 4 bytes (float32: what the engines hand
back and the tiler blends into; the alpha plane counts as a fourth channel), is checked
against ``--max-output-mb`` as soon as the image's size and the model's scale are known, and
the message says what it would take. Encoding needs memory on top (8- or 16-bit copies);
the budget is the output itself, the one number that grows with scale².
"""

from __future__ import annotations

import math

from edgesr.errors import ImageError

#: Default ``--max-output-mb``: a 12 MP photo at x4 (192 MP, 2.2 GB as float32 RGB) fits,
#: a 64 MP one at x4 (12 GB) does not.
DEFAULT_MAX_OUTPUT_MB = 4096
BYTES_PER_VALUE = 4  # float32
MB = 1 << 20


def output_bytes(*, width: int, height: int, scale: int, outscale: float | None = None,
                 alpha: bool = False) -> int:
    """Bytes of the float32 output of a ``width`` x ``height`` input at ``scale`` (the network's
    factor), or at ``outscale`` when that resize is larger."""
    factor = max(scale, outscale or 0)
    out_px = math.ceil(width * factor) * math.ceil(height * factor)
    return out_px * (4 if alpha else 3) * BYTES_PER_VALUE


def check_max_output_mb(max_output_mb: object) -> int:
    if isinstance(max_output_mb, bool) or not isinstance(max_output_mb, int) or max_output_mb < 1:
        raise ImageError(f"--max-output-mb {max_output_mb!r}: expected an integer >= 1 (default "
                         f"{DEFAULT_MAX_OUTPUT_MB})")
    return max_output_mb


def check_output_budget(*, source: object, width: int, height: int, scale: int,
                        outscale: float | None = None, alpha: bool = False,
                        max_output_mb: int = DEFAULT_MAX_OUTPUT_MB) -> None:
    """Refuse (one-line :class:`ImageError`) an output larger than ``max_output_mb``, saying
    its size, what it takes and the flag that allows it."""
    need = output_bytes(width=width, height=height, scale=scale, outscale=outscale, alpha=alpha)
    if need <= check_max_output_mb(max_output_mb) * MB:
        return
    factor = max(scale, outscale or 0)
    out_w, out_h = math.ceil(width * factor), math.ceil(height * factor)
    need_mb = math.ceil(need / MB)
    raise ImageError(
        f"cannot upscale {source}: its x{factor:g} output, {width}x{height} -> {out_w}x{out_h} "
        f"(width x height), takes {need_mb:,} MB as float32 {'RGBA' if alpha else 'RGB'}, more than "
        f"--max-output-mb {max_output_mb}; pass --max-output-mb {need_mb} if this machine has that "
        "much memory to spare (and more for encoding), or upscale a smaller image or crop"
    )
