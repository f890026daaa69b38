"""LKDN: Large Kernel Distillation Network (Xie et al., CVPRW 2023), and its block framework.

C=56, 8 blocks, input stacked 4x; every block ends in an attention *cell* (LKA in LKDN),
which is the slot LMFN fills with LKA / MSM / IFM cells. 321,992 / 311,387 / 303,812
params at x4/x3/x2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgesr.errors import ConfigError
from edgesr.models.blocks import BSConvU, ChannelLayerNorm, ConcatFusionSR

CellFactory = Callable[[int], nn.Module]  # attention channels -> cell


class LKA(nn.Module):
    """Large kernel attention: 1x1 -> depthwise 5x5 -> depthwise 5x5 dilation 3, times input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pw = nn.Conv2d(channels, channels, 1)
        self.dw = nn.Conv2d(channels, channels, 5, padding=2, groups=channels)
        self.dw_dilated = nn.Conv2d(channels, channels, 5, padding=6, dilation=3, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.dw_dilated(self.dw(self.pw(x)))


@dataclass(frozen=True, kw_only=True)
class LKDNConfig:
    scale: int = 4
    channels: int = 56  # C
    attention_channels: int = 56  # A
    num_blocks: int = 8
    stack_copies: int = 4


class DistillationBlock(nn.Module):
    """LKDB: 3 distill/refine steps (no identity), 1x1 -> cell -> 1x1 -> LayerNorm, + input."""

    def __init__(self, *, channels: int, attention_channels: int, cell: CellFactory) -> None:
        super().__init__()
        distilled = channels // 2
        self.distill = nn.ModuleList(nn.Conv2d(channels, distilled, 1) for _ in range(3))
        self.refine = nn.ModuleList(BSConvU(channels, channels, 3) for _ in range(3))
        self.distill_last = BSConvU(channels, distilled, 3)
        self.reduce = nn.Conv2d(distilled * 4, attention_channels, 1)
        self.cell = cell(attention_channels)
        self.expand = nn.Conv2d(attention_channels, channels, 1)
        self.norm = ChannelLayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        refined = x
        for distill, refine in zip(self.distill, self.refine):
            distilled.append(F.gelu(distill(refined)))
            refined = F.gelu(refine(refined))
        distilled.append(F.gelu(self.distill_last(refined)))
        out = self.cell(self.reduce(torch.cat(distilled, dim=1)))
        return self.norm(self.expand(out)) + x


class LKDNBackbone(ConcatFusionSR):
    """Stacked input -> BSConvU -> blocks (one cell each) -> concat fusion -> upsampler."""

    def __init__(self, *, config: LKDNConfig, cells: list[CellFactory]) -> None:
        super().__init__()
        if len(cells) != config.num_blocks:
            raise ConfigError(f"got {len(cells)} cells, expected one per block ({config.num_blocks})")
        self.config = config
        c = config.channels
        self.copies = config.stack_copies  # deploy() folds the stacking into the shallow conv
        self.shallow = BSConvU(3 * config.stack_copies, c, 3)
        self.blocks = nn.ModuleList(
            DistillationBlock(channels=c, attention_channels=config.attention_channels, cell=cell)
            for cell in cells
        )
        self._build_fusion(channels=c, num_blocks=config.num_blocks, scale=config.scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(lr, copies=self.copies)


class LKDN(LKDNBackbone):
    def __init__(self, *, config: LKDNConfig) -> None:
        super().__init__(config=config, cells=[LKA] * config.num_blocks)
