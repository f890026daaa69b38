"""LMFN: Long-range Multi-scale Fusion Network (ICASSP 2025), reconstructed from its equations.

No public code or numbers exist. Every choice below is ours, made from the paper's text,
eqs. (1)-(10), Fig. 2 and DESIGN section 3; the same list is in ``LMFNConfig``:

- Backbone: LKDN (C=56, A=56, 8 blocks, input stacked 4x, BSConvU shallow conv, concat
  fusion -> 1x1 -> GELU -> BSConvU -> + shallow -> pixel-shuffle upsampler). Each block is
  LKDN's distillation block whose attention slot holds one *cell*.
- Cells fill the slots periodically: LKA, MSM, IFM, LKA, MSM, IFM, LKA, MSM ("LKA-M and
  MSM-M are periodically stacked", plus IFM-M); configurable via ``cells``.
- LKA cell (eq. 1): 1x1 -> depthwise 5x5 -> depthwise 5x5 dilation 3 -> times the input.
- MSM cell (eqs. 2-5): split channels in 4; branch i max-pools by 2^i for i >= 1 (kernel =
  stride = 2^i, ceil mode so any H, W works), applies DSConv(K=3, morph = i mod 2 so the
  branches alternate horizontal and vertical snakes), and resizes back to exactly H x W with
  nearest-neighbour interpolation; concat -> 1x1 -> GELU -> times the input.
- IFM cell (eqs. 6-10): channel LayerNorm -> 1x1 A->2A -> split x1, x2; IFF(x2) splits x2 in
  halves x_l, x_m and runs merge-and-run twice: z = LKA(.) + mean(x_l, x_m), then
  x~ = MSM(.) + mean(z_l, z_m), with separate LKA/MSM weights per half; IFF = 1x1(concat) + x2;
  IFM = 1x1(x1 * IFF(x2)) + input.
- DSConv: DSCNet's "pro" definition (see ``edgesr.ops.dsconv``), extend_scope 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgesr.errors import ConfigError
from edgesr.models.blocks import ChannelLayerNorm
from edgesr.models.lkdn import LKA, CellFactory, LKDNBackbone, LKDNConfig
from edgesr.ops.dsconv import DSConv

CELL_PATTERN = ("lka", "msm", "ifm")


@dataclass(frozen=True, kw_only=True)
class LMFNConfig:
    scale: int = 4
    channels: int = 56
    attention_channels: int = 56
    num_blocks: int = 8
    stack_copies: int = 4
    cells: tuple[str, ...] | None = None  # None: CELL_PATTERN repeated over the blocks
    dsconv_kernel_size: int = 3
    extend_scope: float = 1.0

    def cell_names(self) -> tuple[str, ...]:
        if self.cells is not None:
            return self.cells
        return tuple(CELL_PATTERN[i % len(CELL_PATTERN)] for i in range(self.num_blocks))


class MSM(nn.Module):
    """Multi-scale modulation: 4 branches at 1, 1/2, 1/4, 1/8 resolution, each a DSConv."""

    def __init__(self, channels: int, *, kernel_size: int = 3, extend_scope: float = 1.0) -> None:
        super().__init__()
        if channels % 4:
            raise ConfigError(f"MSM splits channels in 4; got {channels}, use a multiple of 4")
        part = channels // 4
        self.branches = nn.ModuleList(
            DSConv(in_channels=part, out_channels=part, kernel_size=kernel_size,
                   morph=i % 2, extend_scope=extend_scope)
            for i in range(4)
        )
        self.fuse = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        outputs = []
        for i, (part, branch) in enumerate(zip(torch.chunk(x, 4, dim=1), self.branches)):
            if i == 0:
                outputs.append(branch(part))
                continue
            factor = 2**i
            pooled = F.max_pool2d(part, kernel_size=factor, stride=factor, ceil_mode=True)
            outputs.append(F.interpolate(branch(pooled), size=size, mode="nearest"))
        return F.gelu(self.fuse(torch.cat(outputs, dim=1))) * x


class IFF(nn.Module):
    """Interactive feature fusion: merge-and-run over LKA then MSM on two channel halves."""

    def __init__(self, channels: int, *, kernel_size: int = 3, extend_scope: float = 1.0) -> None:
        super().__init__()
        half = channels // 2
        self.lka_l, self.lka_m = LKA(half), LKA(half)
        self.msm_l = MSM(half, kernel_size=kernel_size, extend_scope=extend_scope)
        self.msm_m = MSM(half, kernel_size=kernel_size, extend_scope=extend_scope)
        self.fuse = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_l, x_m = torch.chunk(x, 2, dim=1)
        mean_x = (x_l + x_m) / 2
        z_l, z_m = self.lka_l(x_l) + mean_x, self.lka_m(x_m) + mean_x
        mean_z = (z_l + z_m) / 2
        out_l, out_m = self.msm_l(z_l) + mean_z, self.msm_m(z_m) + mean_z
        return self.fuse(torch.cat([out_l, out_m], dim=1)) + x


class IFM(nn.Module):
    """Interactive fusion modulation: x1 * IFF(x2) after LayerNorm and a 1x1 expansion."""

    def __init__(self, channels: int, *, kernel_size: int = 3, extend_scope: float = 1.0) -> None:
        super().__init__()
        self.norm = ChannelLayerNorm(channels)
        self.expand = nn.Conv2d(channels, channels * 2, 1)
        self.iff = IFF(channels, kernel_size=kernel_size, extend_scope=extend_scope)
        self.project = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = torch.chunk(self.expand(self.norm(x)), 2, dim=1)
        return self.project(x1 * self.iff(x2)) + x


def _cell_factory(name: str, config: LMFNConfig) -> CellFactory:
    kwargs = {"kernel_size": config.dsconv_kernel_size, "extend_scope": config.extend_scope}
    factories: dict[str, CellFactory] = {
        "lka": LKA,
        "msm": lambda channels: MSM(channels, **kwargs),
        "ifm": lambda channels: IFM(channels, **kwargs),
    }
    if name not in factories:
        raise ConfigError(f"unknown LMFN cell {name!r}; use one of {sorted(factories)}")
    return factories[name]


class LMFN(LKDNBackbone):
    def __init__(self, *, config: LMFNConfig) -> None:
        backbone = LKDNConfig(
            scale=config.scale, channels=config.channels,
            attention_channels=config.attention_channels, num_blocks=config.num_blocks,
            stack_copies=config.stack_copies,
        )
        super().__init__(config=backbone, cells=[_cell_factory(n, config) for n in config.cell_names()])
