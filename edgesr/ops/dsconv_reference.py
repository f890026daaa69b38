"""Slow, obviously correct numpy oracle of dynamic snake convolution (DESIGN section 3).

Every faster implementation (the torch function, the ONNX local function, the TensorRT
plugin / Triton kernel) is tested against this file. It is written for clarity, not speed:
plain Python loops over batch, output pixel and kernel point, float64 throughout, and the
layout of DSCNet itself (samples stacked along height for morph 0, along width for morph 1,
then a strided (K,1) / (1,K) convolution).

Functions
---------
- :func:`snake_accumulate_reference`: Δ' from Δ by walking outward from the centre.
- :func:`dsconv_sample_reference`: the stacked sampled tensor ([N,C,K·H,W] or [N,C,H,W·K]).
- :func:`dynamic_snake_conv_reference`: sampling + collapse conv (+ bias), i.e. exactly
  what ``edgesr.ops.dsconv.dynamic_snake_conv`` and the ``edgesr::DynamicSnakeConv`` node compute.
- :func:`dsconv_module_reference`: the whole ``DSConv`` module forward from its parameters
  (offset conv, GroupNorm, tanh, the above, GroupNorm, ReLU).

Only numpy is imported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = [
    "snake_accumulate_reference",
    "dsconv_sample_reference",
    "dynamic_snake_conv_reference",
    "dsconv_module_reference",
]


def snake_accumulate_reference(delta: np.ndarray) -> np.ndarray:
    """Accumulate per-point offsets outward from the centre point.

    ``delta`` has the K points on axis 0 (any trailing shape). With c = K // 2:
    Δ'_c = 0; Δ'_{c+i} = Δ'_{c+i-1} + Δ_{c+i}; Δ'_{c-i} = Δ'_{c-i+1} + Δ_{c-i},
    for i = 1 .. c (all the way to both ends of the kernel).
    """
    delta = np.asarray(delta, dtype=np.float64)
    k_len = delta.shape[0]
    c = k_len // 2
    out = np.zeros_like(delta)
    for i in range(1, c + 1):
        out[c + i] = out[c + i - 1] + delta[c + i]
        out[c - i] = out[c - i + 1] + delta[c - i]
    return out


def _bilinear_clamped(image: np.ndarray, y: float, x: float) -> np.ndarray:
    """Sample ``image`` [C, H, W] at pixel coordinates (y, x), clamped to the image.

    Border replication: the coordinates are first clamped to [0, H-1] x [0, W-1]; then
    plain bilinear interpolation between the four surrounding pixels (pixel centres at
    integer coordinates, i.e. align_corners=True semantics).
    """
    _, height, width = image.shape
    y = min(max(y, 0.0), height - 1.0)
    x = min(max(x, 0.0), width - 1.0)
    y0 = int(math.floor(y))
    x0 = int(math.floor(x))
    y1 = min(y0 + 1, height - 1)
    x1 = min(x0 + 1, width - 1)
    wy = y - y0
    wx = x - x0
    return (
        image[:, y0, x0] * (1.0 - wy) * (1.0 - wx)
        + image[:, y0, x1] * (1.0 - wy) * wx
        + image[:, y1, x0] * wy * (1.0 - wx)
        + image[:, y1, x1] * wy * wx
    )


def dsconv_sample_reference(
    x: np.ndarray,
    offset: np.ndarray,
    *,
    kernel_size: int,
    morph: int,
    extend_scope: float = 1.0,
) -> np.ndarray:
    """The DSCNet sampled tensor.

    ``x`` [N, C, H, W]; ``offset`` [N, 2K, H, W] (the tanh output: channels [0:K] are
    y-offsets, [K:2K] x-offsets). Returns [N, C, K·H, W] for morph 0 (row i·K + k holds
    point k of output row i) or [N, C, H, W·K] for morph 1 (column j·K + k).

    Point k of output pixel (i, j), c = K // 2, Δ' the snake-accumulated offsets:
    morph 0 -> (y, x) = (i + s·Δ'_k(i, j), j + k - c);
    morph 1 -> (y, x) = (i + k - c, j + s·Δ'_k(i, j)).
    """
    x = np.asarray(x, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    n_batch, channels, height, width = x.shape
    k_len = kernel_size
    c = k_len // 2
    if morph == 0:
        out = np.zeros((n_batch, channels, k_len * height, width))
    else:
        out = np.zeros((n_batch, channels, height, width * k_len))
    for n in range(n_batch):
        for i in range(height):
            for j in range(width):
                if morph == 0:
                    delta = offset[n, 0:k_len, i, j]  # y-offsets
                else:
                    delta = offset[n, k_len : 2 * k_len, i, j]  # x-offsets
                acc = snake_accumulate_reference(delta)
                for k in range(k_len):
                    if morph == 0:
                        y = i + extend_scope * acc[k]
                        xx = float(j + k - c)
                        out[n, :, i * k_len + k, j] = _bilinear_clamped(x[n], y, xx)
                    else:
                        y = float(i + k - c)
                        xx = j + extend_scope * acc[k]
                        out[n, :, i, j * k_len + k] = _bilinear_clamped(x[n], y, xx)
    return out


def dynamic_snake_conv_reference(
    x: np.ndarray,
    offset: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    kernel_size: int,
    morph: int,
    extend_scope: float = 1.0,
) -> np.ndarray:
    """Sampling followed by the collapse convolution, in float64.

    ``weight`` is [O, C, K, 1] for morph 0 and [O, C, 1, K] for morph 1 (a Conv2d with
    kernel (K,1) stride (K,1), resp. (1,K) stride (1,K), applied to the stacked samples);
    ``bias`` is [O] or None. Returns [N, O, H, W].
    """
    sampled = dsconv_sample_reference(
        x, offset, kernel_size=kernel_size, morph=morph, extend_scope=extend_scope
    )
    weight = np.asarray(weight, dtype=np.float64)
    n_batch, _, height, width = np.shape(x)
    k_len = kernel_size
    out_channels = weight.shape[0]
    out = np.zeros((n_batch, out_channels, height, width))
    for n in range(n_batch):
        for o in range(out_channels):
            for i in range(height):
                for j in range(width):
                    if morph == 0:
                        window = sampled[n, :, i * k_len : (i + 1) * k_len, j : j + 1]
                    else:
                        window = sampled[n, :, i : i + 1, j * k_len : (j + 1) * k_len]
                    out[n, o, i, j] = float(np.sum(window * weight[o]))
                    if bias is not None:
                        out[n, o, i, j] += float(bias[o])
    return out


def _conv3x3_reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """3x3 convolution, zero padding 1, stride 1 (cross-correlation, like torch)."""
    n_batch, _, height, width = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n_batch, weight.shape[0], height, width))
    for n in range(n_batch):
        for i in range(height):
            for j in range(width):
                window = padded[n, :, i : i + 3, j : j + 3]  # [C, 3, 3]
                out[n, :, i, j] = np.einsum("ocab,cab->o", weight, window) + bias
    return out


def _group_norm_reference(
    x: np.ndarray, groups: int, weight: np.ndarray, bias: np.ndarray, eps: float
) -> np.ndarray:
    n_batch, channels, height, width = x.shape
    per_group = channels // groups
    out = np.empty_like(x)
    for n in range(n_batch):
        for g in range(groups):
            block = x[n, g * per_group : (g + 1) * per_group]
            mean = block.mean()
            var = block.var()  # population variance, as torch's GroupNorm
            out[n, g * per_group : (g + 1) * per_group] = (block - mean) / math.sqrt(var + eps)
    return out * weight[None, :, None, None] + bias[None, :, None, None]


def dsconv_module_reference(
    x: np.ndarray,
    params: Mapping[str, np.ndarray],
    *,
    kernel_size: int,
    morph: int,
    extend_scope: float,
    norm_groups: int,
    eps: float = 1e-5,
) -> np.ndarray:
    """The whole ``DSConv`` forward from its ``state_dict`` (as numpy arrays), in float64.

    offset = tanh(GroupNorm(K)(Conv3x3(x))); y = dynamic_snake_conv_reference(...);
    return ReLU(GroupNorm(norm_groups)(y)).
    """
    x = np.asarray(x, dtype=np.float64)
    p = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
    offset = _conv3x3_reference(x, p["offset_conv.weight"], p["offset_conv.bias"])
    offset = _group_norm_reference(
        offset, kernel_size, p["offset_norm.weight"], p["offset_norm.bias"], eps
    )
    offset = np.tanh(offset)
    y = dynamic_snake_conv_reference(
        x,
        offset,
        p["collapse.weight"],
        p["collapse.bias"],
        kernel_size=kernel_size,
        morph=morph,
        extend_scope=extend_scope,
    )
    y = _group_norm_reference(y, norm_groups, p["norm.weight"], p["norm.bias"], eps)
    return np.maximum(y, 0.0)
