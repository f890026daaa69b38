"""Fused dynamic snake convolution as one Triton kernel (no torch; DESIGN sections 3 and 7).

Computes exactly what ``edgesr.ops.dsconv.dynamic_snake_conv`` and the ONNX node
``edgesr::DynamicSnakeConv`` compute (the numpy oracle is ``edgesr.ops.dsconv_reference``):

    y[n, o, i, j] = bias[o] + sum_{c, k} weight[o, c·K + k] · bilinear(x[n, c], p_k(i, j))

with the snake-accumulated, extend_scope-scaled offsets of the moving axis, the point
coordinates clamped to the image (border replication) and sampled bilinearly in pixel
coordinates (align_corners semantics).

The K-times larger sampled tensor is never materialised. Each program owns a block of
``BLOCK_P`` output pixels (flattened over N, H, W) and a block of ``BLOCK_O`` output
channels. For each of the K points (unrolled: K is a compile-time constant) it computes the
snake offset and the four bilinear taps of its pixels once, then loops over the input
channels, gathers the four taps, and accumulates ``weight[o, c·K + k] * sample`` into a
float32 ``[BLOCK_O, BLOCK_P]`` tile. Arithmetic is float32 whatever the storage type
(fp32 or fp16 for each tensor independently); the output is stored in its own type.

The kernel takes raw pointers, int32 sizes and element strides only, so one source serves:

- the TensorRT AOT plugin (``runtime/engines/trt/plugin.py``), which compiles it to PTX ahead of
  time; TensorRT then launches it with the tensor inputs, then the int32 scalars, then
  the output (the AOT calling convention, hence the argument order below);
- the JIT plugin fallback (same PTX, launched through cuda-python);
  compiled by ``runtime/engines/trt/kernel_compile.py``;
- tests on CPU under ``TRITON_INTERPRET=1`` (``tests/test_dsconv_triton.py``).

``import edgesr.runtime.engines.trt.kernel`` works without triton: :data:`HAVE_TRITON` is then
False and :func:`dsconv_kernel` raises :class:`~edgesr.errors.EngineUnavailableError`.
``TRITON_INTERPRET`` is read by triton when the kernel is defined, so set it before this
module is first imported.

Kernel arguments (in order)::

    x_ptr, offset_ptr, weight_ptr, bias_ptr,          # inputs (weight [O, C·K] contiguous)
    C, H, W, O, NPIX,                                  # int32 sizes, NPIX = N·H·W
    sxn, sxc, sxh, sxw,                                # x strides (elements)
    son, soc, soh, sow,                                # offset strides
    syn, syc, syh, syw,                                # output strides
    y_ptr,                                             # output [N, O, H, W]
    K, MORPH, EXTEND_SCOPE, BLOCK_P, BLOCK_O           # compile-time constants

``EXTEND_SCOPE`` is a compile-time float because TensorRT's AOT launcher passes only
integer scalars.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgesr.errors import ConfigError, EngineUnavailableError

__all__ = [
    "HAVE_TRITON",
    "TRITON_IMPORT_ERROR",
    "KERNEL_NAME",
    "SCALAR_ARG_NAMES",
    "DSConvLaunch",
    "choose_launch",
    "contiguous_strides",
    "scalar_args",
    "dsconv_kernel",
    "CONSTEXPR_NAMES",
    "POINTER_INPUT_NAMES",
]

#: Python name of the Triton kernel (the PTX entry name derives from it).
KERNEL_NAME = "edgesr_dsconv_kernel"

#: The int32 scalar arguments, in kernel order (between the 4 inputs and the output).
SCALAR_ARG_NAMES: tuple[str, ...] = (
    "C", "H", "W", "O", "NPIX",
    "sxn", "sxc", "sxh", "sxw",
    "son", "soc", "soh", "sow",
    "syn", "syc", "syh", "syw",
)  # fmt: skip
POINTER_INPUT_NAMES: tuple[str, ...] = ("x_ptr", "offset_ptr", "weight_ptr", "bias_ptr")
CONSTEXPR_NAMES: tuple[str, ...] = ("K", "MORPH", "EXTEND_SCOPE", "BLOCK_P", "BLOCK_O")


def _import_triton() -> tuple[Any, Any, str]:
    try:
        triton_mod = importlib.import_module("triton")
        tl_mod = importlib.import_module("triton.language")
    except ImportError as exc:  # also a broken install (missing shared libraries)
        return None, None, f"{type(exc).__name__}: {exc}"
    return triton_mod, tl_mod, ""


triton, tl, TRITON_IMPORT_ERROR = _import_triton()
HAVE_TRITON: bool = triton is not None


@dataclass(frozen=True, kw_only=True)
class DSConvLaunch:
    """Block sizes and warps of one launch; ``grid`` gives the program grid."""

    block_p: int
    block_o: int
    num_warps: int

    def grid(self, *, npix: int, out_channels: int) -> tuple[int, int, int]:
        return (-(-npix // self.block_p), -(-out_channels // self.block_o), 1)


def choose_launch(*, out_channels: int, block_p: int = 128) -> DSConvLaunch:
    """Blocks for ``out_channels`` outputs: one program covers all of them when O <= 32,
    so every input sample is gathered once per pixel block."""
    if out_channels < 1:
        raise ConfigError(f"DSConv out_channels must be >= 1, received {out_channels}.")
    if block_p < 16 or block_p & (block_p - 1):
        raise ConfigError(f"block_p must be a power of two >= 16, received {block_p}.")
    block_o = min(32, 1 << max(0, math.ceil(math.log2(out_channels))))
    block_o = max(block_o, 2)
    return DSConvLaunch(block_p=block_p, block_o=block_o, num_warps=4 if block_p >= 128 else 2)


def contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Element strides of a C-contiguous array of ``shape``."""
    strides: list[int] = []
    step = 1
    for size in reversed(list(shape)):
        strides.append(step)
        step *= int(size)
    return tuple(reversed(strides))


def scalar_args(
    *,
    x_shape: Sequence[int],
    out_channels: int,
    x_strides: Sequence[int] | None = None,
    offset_strides: Sequence[int] | None = None,
    out_strides: Sequence[int] | None = None,
    kernel_size: int,
) -> tuple[int, ...]:
    """The int32 scalars in kernel order (:data:`SCALAR_ARG_NAMES`); strides in elements,
    contiguous when not given."""
    n_batch, channels, height, width = (int(v) for v in x_shape)
    xs = tuple(x_strides) if x_strides is not None else contiguous_strides(x_shape)
    os_ = (
        tuple(offset_strides)
        if offset_strides is not None
        else contiguous_strides((n_batch, 2 * kernel_size, height, width))
    )
    ys = (
        tuple(out_strides)
        if out_strides is not None
        else contiguous_strides((n_batch, out_channels, height, width))
    )
    values = (channels, height, width, out_channels, n_batch * height * width, *xs, *os_, *ys)
    if any(abs(v) >= 2**31 for v in values):
        raise ConfigError(
            f"DSConv sizes/strides {values} overflow int32; process the image in tiles."
        )
    return tuple(int(v) for v in values)


if HAVE_TRITON:
    # (tl.constexpr is triton's marker for compile-time arguments; mypy sees triton as Any)

    @triton.jit
    def edgesr_dsconv_kernel(  # type: ignore[no-untyped-def]
        x_ptr,
        offset_ptr,
        weight_ptr,
        bias_ptr,
        C,
        H,
        W,
        O,  # noqa: E741
        NPIX,
        sxn,
        sxc,
        sxh,
        sxw,
        son,
        soc,
        soh,
        sow,
        syn,
        syc,
        syh,
        syw,
        y_ptr,
        K: tl.constexpr,  # type: ignore[name-defined]
        MORPH: tl.constexpr,  # type: ignore[name-defined]
        EXTEND_SCOPE: tl.constexpr,  # type: ignore[name-defined]
        BLOCK_P: tl.constexpr,  # type: ignore[name-defined]
        BLOCK_O: tl.constexpr,  # type: ignore[name-defined]
    ):
        CENTER: tl.constexpr = K // 2  # type: ignore[name-defined]
        pid_p = tl.program_id(0)
        pid_o = tl.program_id(1)

        p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)  # flattened (n, i, j)
        p_mask = p < NPIX
        p = tl.where(p_mask, p, 0)  # keep masked lanes' addresses inside the tensors
        hw = H * W
        n = (p // hw).to(tl.int64)
        rem = p % hw
        i = rem // W
        j = rem % W
        o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
        o_mask = o < O
        o_safe = tl.where(o_mask, o, 0)

        x_batch = x_ptr + n * sxn
        off_pix = offset_ptr + n * son + i.to(tl.int64) * soh + j.to(tl.int64) * sow
        h_max = (H - 1) * 1.0  # a Python float when triton specialises H == 1
        w_max = (W - 1) * 1.0
        fi = i.to(tl.float32)
        fj = j.to(tl.float32)
        ck = C * K

        acc = tl.zeros((BLOCK_O, BLOCK_P), dtype=tl.float32)
        for k in tl.static_range(K):
            # snake accumulation from the centre: sum of the moving-axis offsets strictly
            # between the centre and point k, point k included (zero at the centre)
            disp = tl.zeros((BLOCK_P,), dtype=tl.float32)
            for jj in tl.static_range(K):
                if ((jj > CENTER) and (jj <= k)) or ((jj < CENTER) and (jj >= k)):
                    d = tl.load(off_pix + (MORPH * K + jj) * soc, mask=p_mask, other=0.0)
                    disp += d.to(tl.float32)
            disp = disp * EXTEND_SCOPE
            if MORPH == 0:
                y = fi + disp
                xx = fj + (k - CENTER)
            else:
                y = fi + (k - CENTER)
                xx = fj + disp
            y = tl.minimum(tl.maximum(y, 0.0), h_max)
            xx = tl.minimum(tl.maximum(xx, 0.0), w_max)
            y0f = tl.floor(y)
            x0f = tl.floor(xx)
            wy = y - y0f
            wx = xx - x0f
            y0 = y0f.to(tl.int32)
            x0 = x0f.to(tl.int32)
            y1 = tl.minimum(y0 + 1, H - 1)
            x1 = tl.minimum(x0 + 1, W - 1)
            w00 = (1.0 - wy) * (1.0 - wx)
            w01 = (1.0 - wy) * wx
            w10 = wy * (1.0 - wx)
            w11 = wy * wx
            r0 = y0.to(tl.int64) * sxh
            r1 = y1.to(tl.int64) * sxh
            c0 = x0.to(tl.int64) * sxw
            c1 = x1.to(tl.int64) * sxw
            a00 = x_batch + r0 + c0
            a01 = x_batch + r0 + c1
            a10 = x_batch + r1 + c0
            a11 = x_batch + r1 + c1
            w_row = weight_ptr + o_safe.to(tl.int64) * ck + k
            for c in range(0, C):
                cs = c * sxc
                v = w00 * tl.load(a00 + cs, mask=p_mask, other=0.0).to(tl.float32)
                v += w01 * tl.load(a01 + cs, mask=p_mask, other=0.0).to(tl.float32)
                v += w10 * tl.load(a10 + cs, mask=p_mask, other=0.0).to(tl.float32)
                v += w11 * tl.load(a11 + cs, mask=p_mask, other=0.0).to(tl.float32)
                wv = tl.load(w_row + c * K, mask=o_mask, other=0.0).to(tl.float32)
                acc += wv[:, None] * v[None, :]

        bias = tl.load(bias_ptr + o_safe, mask=o_mask, other=0.0).to(tl.float32)
        acc += bias[:, None]
        y_addr = (
            y_ptr
            + n[None, :] * syn
            + o_safe.to(tl.int64)[:, None] * syc
            + i.to(tl.int64)[None, :] * syh
            + j.to(tl.int64)[None, :] * syw
        )
        tl.store(
            y_addr,
            acc.to(y_ptr.dtype.element_ty),
            mask=o_mask[:, None] & p_mask[None, :],
        )


def dsconv_kernel() -> Any:
    """The ``@triton.jit`` kernel; EngineUnavailableError when triton is not installed."""
    if not HAVE_TRITON:
        raise EngineUnavailableError(
            f"the DSConv Triton kernel needs triton, which cannot be imported "
            f"({TRITON_IMPORT_ERROR}); pip install triton, or build without the plugin "
            "(TrtOptions(plugin=False) runs the ONNX local function instead)"
        )
    return edgesr_dsconv_kernel
