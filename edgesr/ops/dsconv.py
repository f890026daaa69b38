"""Dynamic snake convolution (DSConv), the torch implementation (DESIGN section 3).

Following DSCNet's improved ("pro") definition, with kernel length K (odd, >= 3),
morph 0 (the K points spread along x, each point free to move along y) or morph 1
(points along y, moving along x), and ``extend_scope`` s:

1. ``offset = tanh(GroupNorm(K, 2K)(Conv2d(in, 2K, 3, padding=1)(x)))``; channels [0:K]
   are y-offsets, [K:2K] x-offsets. Morph 0 uses only the y-offsets, morph 1 only the
   x-offsets.
2. Snake accumulation from the centre c = K // 2 outward, all the way to both ends:
   Δ'_c = 0, Δ'_{c+i} = Δ'_{c+i-1} + Δ_{c+i}, Δ'_{c-i} = Δ'_{c-i+1} + Δ_{c-i}. It is
   linear, so it is one multiplication by a fixed K x K 0/1 matrix (:func:`snake_matrix`).
   (DSCNet's original file stops one step early, a confirmed typo, not copied.)
3. Point k of output pixel (i, j): morph 0 -> (y, x) = (i + s·Δ'_k, j + k - c);
   morph 1 -> (i + k - c, j + s·Δ'_k). Coordinates are clamped to [0, H-1] x [0, W-1]
   (border replication) and sampled bilinearly in pixel coordinates (align_corners=True).
4. The K samples are collapsed by ``Conv2d(in, out, (K,1), stride (K,1))`` (morph 0) or
   ``(1,K), stride (1,K)`` (morph 1) with bias, then GroupNorm and ReLU.

Steps 2-4 up to the collapse conv and its bias are :func:`dynamic_snake_conv`: exactly what
the ONNX node ``edgesr::DynamicSnakeConv`` and the TensorRT plugin compute. Implementation
note: the samples are laid out [N, C, K, H, W] and the collapse runs as a 1x1 conv over
C·K channels with the weight reshaped to [O, C·K, 1, 1]. A [O, C, K, 1] and a [O, C, 1, K]
weight flatten to the same (c, k) order, so this equals DSCNet's stacked-along-height /
stacked-along-width strided conv for both morphs (the numpy oracle in
``edgesr.ops.dsconv_reference`` uses DSCNet's layout literally and the tests compare them).

The export layer can swap the implementation of :func:`dynamic_snake_conv` for one that
emits a single ONNX node (:func:`dsconv_override`); eager and training code never sees it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgesr.errors import ConfigError
from edgesr.ops.dsconv_checks import (
    check_extend_scope,
    check_inputs,
    check_kernel_size,
    check_morph,
    collapse_kernel,
    dsconv_norm_groups,
)

__all__ = [
    "DSConv",
    "dynamic_snake_conv",
    "dynamic_snake_conv_eager",
    "dsconv_norm_groups",
    "snake_matrix",
    "dsconv_override",
]

DSConvImpl = Callable[..., Tensor]

# Replacement implementation of ``dynamic_snake_conv`` (set by the export layer only).
_OVERRIDE: contextvars.ContextVar[DSConvImpl | None] = contextvars.ContextVar(
    "edgesr_dsconv_override", default=None
)


@functools.lru_cache(maxsize=32)
def _snake_rows(kernel_size: int) -> tuple[tuple[float, ...], ...]:
    # Cache plain Python numbers, never a tensor: a cached tensor created while the
    # TorchScript tracer runs would be reused by a later trace that has never seen it
    # (the exporter then fails with "unordered_map::at").
    c = kernel_size // 2
    return tuple(
        tuple(
            1.0 if (c < j <= k) or (k <= j < c) else 0.0  # right arm / left arm
            for j in range(kernel_size)
        )
        for k in range(kernel_size)
    )


def snake_matrix(
    kernel_size: int, *, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> Tensor:
    """The fixed K x K 0/1 matrix A with Δ' = A Δ (snake accumulation from the centre).

    Row k sums Δ_j over c < j <= k (k > c) or k <= j < c (k < c); row c is zero.
    """
    return _snake_tensor(check_kernel_size(kernel_size), dtype=dtype, device=device)


def _snake_tensor(kernel_size: int, *, dtype: torch.dtype, device: torch.device | None) -> Tensor:
    # unchecked: the hot path (dynamic_snake_conv has validated kernel_size already)
    return torch.tensor(_snake_rows(kernel_size), dtype=dtype, device=device)


def dynamic_snake_conv_eager(
    x: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    *,
    kernel_size: int,
    morph: int,
    extend_scope: float,
) -> Tensor:
    """The standard-op implementation of :func:`dynamic_snake_conv` (never overridden)."""
    k_len = kernel_size
    c = k_len // 2
    # coordinates and sampling in float32 at least (float16 cannot address pixels past
    # 2048, nor fractions past 1024), as in the ONNX function body; float64 stays float64
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    device = x.device

    # 1. the offsets of the axis perpendicular to the kernel, accumulated from the centre
    delta = offset[:, k_len:] if morph else offset[:, :k_len]  # [N, K, H, W]
    acc = torch.einsum(
        "kj,njhw->nkhw", _snake_tensor(k_len, dtype=offset.dtype, device=offset.device), delta
    )
    disp = acc.to(dtype) * extend_scope

    # 2. pixel coordinates of every point, clamped to the image (border replication).
    # ys[-1:] / xs[-1:] are H-1 / W-1 as tensors, so tracing stays shape-generic.
    ys = torch.arange(x.shape[2], dtype=dtype, device=device)
    xs = torch.arange(x.shape[3], dtype=dtype, device=device)
    y_max = ys[-1:]
    x_max = xs[-1:]
    k_off = torch.arange(k_len, dtype=dtype, device=device) - c
    if morph == 0:
        y = ys.view(1, 1, -1, 1) + disp
        xx = xs.view(1, 1, 1, -1) + k_off.view(1, -1, 1, 1)
        xx = xx.expand_as(y)
    else:
        xx = xs.view(1, 1, 1, -1) + disp
        y = ys.view(1, 1, -1, 1) + k_off.view(1, -1, 1, 1)
        y = y.expand_as(xx)
    y = torch.minimum(torch.clamp(y, min=0.0), y_max)
    xx = torch.minimum(torch.clamp(xx, min=0.0), x_max)

    # 3. normalise for align_corners=True (max(., 1) keeps H == 1 or W == 1 finite)
    gy = y * (2.0 / torch.clamp(y_max, min=1.0)) - 1.0
    gx = xx * (2.0 / torch.clamp(x_max, min=1.0)) - 1.0
    # reshape with traced sizes (not flatten/unflatten) keeps H and W dynamic in the
    # TorchScript ONNX exporter
    n_batch, _, height, width = x.shape
    grid = torch.stack((gx, gy), dim=-1).reshape(n_batch, -1, width, 2)  # row k·H + i
    sampled = F.grid_sample(
        x.to(dtype), grid, mode="bilinear", padding_mode="border", align_corners=True
    )  # [N, C, K·H, W]
    sampled = sampled.reshape(n_batch, -1, height, width)  # [N, C·K, H, W], chan c·K + k
    sampled = sampled.to(x.dtype)

    # 4. collapse: the (K,1) / (1,K) strided conv == a 1x1 conv over C·K channels
    w = weight.flatten(1)[:, :, None, None]  # [O, C·K, 1, 1], (c, k) order
    return F.conv2d(sampled, w, bias)


def dynamic_snake_conv(
    x: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    *,
    kernel_size: int,
    morph: int,
    extend_scope: float,
) -> Tensor:
    """Snake accumulation + clamped bilinear sampling + collapse conv (+ bias).

    Args:
        x: [N, C, H, W] input features.
        offset: [N, 2K, H, W], the tanh output of the offset branch ([0:K] y, [K:2K] x).
        weight: collapse conv weight, [O, C, K, 1] for morph 0 or [O, C, 1, K] for morph 1.
        bias: [O] or None.
        kernel_size: K, odd, >= 3.
        morph: 0 or 1.
        extend_scope: multiplier of the accumulated offsets.

    Returns:
        [N, O, H, W] (before the module's GroupNorm and ReLU).

    Differentiable w.r.t. x, offset, weight and bias. Inside the export layer's
    ``dsconv_as_custom_op()`` context this becomes one ``edgesr::DynamicSnakeConv`` node.
    """
    kernel_size = check_kernel_size(kernel_size)
    morph = check_morph(morph)
    extend_scope = check_extend_scope(extend_scope)
    if not (torch.jit.is_tracing() or torch.jit.is_scripting()):
        check_inputs(x, offset, weight, bias, kernel_size, morph)
    override = _OVERRIDE.get()
    if override is not None:
        return override(
            x,
            offset,
            weight,
            bias,
            kernel_size=kernel_size,
            morph=morph,
            extend_scope=extend_scope,
        )
    return dynamic_snake_conv_eager(
        x, offset, weight, bias, kernel_size=kernel_size, morph=morph, extend_scope=extend_scope
    )


@contextlib.contextmanager
def dsconv_override(impl: DSConvImpl) -> Iterator[None]:
    """Within this context, :func:`dynamic_snake_conv` calls ``impl`` instead.

    ``impl`` receives the same arguments (x, offset, weight, bias, *, kernel_size, morph,
    extend_scope). Meant for the export layer (one ONNX custom node); not for training.
    """
    token = _OVERRIDE.set(impl)
    try:
        yield
    finally:
        _OVERRIDE.reset(token)


class DSConv(nn.Module):
    """Dynamic snake convolution block: offset branch -> snake conv -> GroupNorm -> ReLU.

    Args (keyword-only):
        in_channels: C.
        out_channels: O.
        kernel_size: K, odd, >= 3 (default 3).
        morph: 0 (points along x, offsets along y: collapse conv (K,1) stride (K,1)) or
            1 (points along y, offsets along x: collapse conv (1,K) stride (1,K)).
        extend_scope: multiplier of the accumulated offsets (default 1.0).

    Submodules (stable ``state_dict`` names): ``offset_conv`` Conv2d(C, 2K, 3, padding 1,
    bias); ``offset_norm`` GroupNorm(K, 2K); ``collapse`` the one collapse conv the morph
    uses (bias); ``norm`` GroupNorm(G, O); ``act`` ReLU.

    G is ``O // 4`` as in DSCNet when that divides O; otherwise the largest divisor of O
    that is ``<= max(1, O // 4)`` (O = 14 -> 2 groups, O = 7 -> 1): see
    :func:`dsconv_norm_groups`.

    Parameters at in = out = 14, K = 3: 762 + 12 + 602 + 28 = 1404.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        morph: int = 0,
        extend_scope: float = 1.0,
    ) -> None:
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ConfigError(
                f"DSConv in_channels must be a positive integer, received {in_channels!r}."
            )
        self.kernel_size = check_kernel_size(kernel_size)
        self.morph = check_morph(morph)
        self.extend_scope = check_extend_scope(extend_scope)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm_groups = dsconv_norm_groups(out_channels)
        k_len = self.kernel_size

        self.offset_conv = nn.Conv2d(in_channels, 2 * k_len, 3, padding=1, bias=True)
        self.offset_norm = nn.GroupNorm(k_len, 2 * k_len)
        kernel = collapse_kernel(k_len, self.morph)
        self.collapse = nn.Conv2d(in_channels, out_channels, kernel, stride=kernel, bias=True)
        self.norm = nn.GroupNorm(self.norm_groups, out_channels)
        self.act = nn.ReLU()

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"kernel_size={self.kernel_size}, morph={self.morph}, "
            f"extend_scope={self.extend_scope}, norm_groups={self.norm_groups}"
        )

    def offsets(self, x: Tensor) -> Tensor:
        """The tanh offsets [N, 2K, H, W] ([0:K] y, [K:2K] x)."""
        return torch.tanh(self.offset_norm(self.offset_conv(x)))

    def forward(self, x: Tensor) -> Tensor:
        offset = self.offsets(x)
        y = dynamic_snake_conv(
            x,
            offset,
            self.collapse.weight,
            self.collapse.bias,
            kernel_size=self.kernel_size,
            morph=self.morph,
            extend_scope=self.extend_scope,
        )
        return self.act(self.norm(y))
