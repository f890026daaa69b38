"""Argument checks of DSConv (:mod:`edgesr.ops.dsconv`), each failing with one clear line.

Kept apart from the convolution so that the maths there reads on its own: every public entry
(``DSConv(...)``, ``dynamic_snake_conv``, ``snake_matrix``) validates through these, and the
hot path trusts what they returned.
"""

from __future__ import annotations

import math

from torch import Tensor

from edgesr.errors import ConfigError


def check_kernel_size(kernel_size: object) -> int:
    if (
        isinstance(kernel_size, bool)
        or not isinstance(kernel_size, int)
        or kernel_size < 3
        or kernel_size % 2 == 0
    ):
        raise ConfigError(
            f"DSConv kernel_size must be an odd integer >= 3, received {kernel_size!r}; "
            "use e.g. 3, 5, 7 or 9."
        )
    return kernel_size


def check_morph(morph: object) -> int:
    if isinstance(morph, bool) or morph not in (0, 1):
        raise ConfigError(
            f"DSConv morph must be 0 (points along x, offsets along y) or 1 (points along y, "
            f"offsets along x), received {morph!r}."
        )
    return int(morph)  # type: ignore[call-overload]


def check_extend_scope(extend_scope: object) -> float:
    if (
        isinstance(extend_scope, bool)
        or not isinstance(extend_scope, (int, float))
        or not math.isfinite(extend_scope)
    ):
        raise ConfigError(
            f"DSConv extend_scope must be a finite float, received {extend_scope!r}; "
            "DSCNet uses 1.0."
        )
    return float(extend_scope)


def dsconv_norm_groups(out_channels: int) -> int:
    """Number of GroupNorm groups after the collapse conv.

    DSCNet uses ``out_channels // 4`` groups. When that does not divide ``out_channels``
    (or is 0) this returns the largest divisor of ``out_channels`` that is
    ``<= max(1, out_channels // 4)``: e.g. 64 -> 16, 56 -> 14, 14 -> 2, 7 -> 1, 2 -> 1.
    """
    if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels < 1:
        raise ConfigError(
            f"DSConv out_channels must be a positive integer, received {out_channels!r}."
        )
    target = max(1, out_channels // 4)
    for groups in range(target, 0, -1):
        if out_channels % groups == 0:
            return groups
    return 1  # unreachable: 1 divides everything


def collapse_kernel(kernel_size: int, morph: int) -> tuple[int, int]:
    """The collapse conv's kernel (and stride): (K, 1) for morph 0, (1, K) for morph 1."""
    return (kernel_size, 1) if morph == 0 else (1, kernel_size)


def check_inputs(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, kernel_size: int, morph: int
) -> None:
    if x.dim() != 4:
        raise ConfigError(f"DSConv expects x as [N, C, H, W], received shape {tuple(x.shape)}.")
    n_batch, channels, height, width = x.shape
    expected_offset = (n_batch, 2 * kernel_size, height, width)
    if tuple(offset.shape) != expected_offset:
        raise ConfigError(
            f"DSConv offset must be [N, 2K, H, W] = {expected_offset}, received "
            f"{tuple(offset.shape)}; pass the tanh output of the offset branch."
        )
    expected_kernel = collapse_kernel(kernel_size, morph)
    if weight.dim() != 4 or weight.shape[1] != channels or tuple(weight.shape[2:]) != expected_kernel:
        raise ConfigError(
            f"DSConv collapse weight for morph {morph} must be [O, {channels}, "
            f"{expected_kernel[0]}, {expected_kernel[1]}], received {tuple(weight.shape)}."
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ConfigError(
            f"DSConv collapse bias must be [{weight.shape[0]}], received {tuple(bias.shape)}."
        )
