"""IMDN: Information Multi-Distillation Network (Hui et al., ACM MM 2019).

C=64, 6 IMDB blocks with plain 3x3 convs, LeakyReLU(0.05), CCA; 715,176 / 703,059 /
694,404 params at x4/x3/x2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgesr.models.blocks import CCA, PixelShuffleUpsampler

_SLOPE = 0.05


@dataclass(frozen=True, kw_only=True)
class IMDNConfig:
    scale: int = 4
    channels: int = 64
    num_blocks: int = 6


class IMDB(nn.Module):
    """Information multi-distillation block: split 1/4 off after each 3x3 conv."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.distilled = channels // 4
        remaining = channels - self.distilled
        self.convs = nn.ModuleList(
            [nn.Conv2d(channels, channels, 3, padding=1)]
            + [nn.Conv2d(remaining, channels, 3, padding=1) for _ in range(2)]
        )
        self.last = nn.Conv2d(remaining, self.distilled, 3, padding=1)
        self.fuse = nn.Conv2d(self.distilled * 4, channels, 1)
        self.cca = CCA(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        remaining = x
        for conv in self.convs:
            out = F.leaky_relu(conv(remaining), _SLOPE)
            split, remaining = torch.split(out, [self.distilled, out.shape[1] - self.distilled], 1)
            distilled.append(split)
        distilled.append(self.last(remaining))
        return self.fuse(self.cca(torch.cat(distilled, dim=1))) + x


class IMDN(nn.Module):
    def __init__(self, *, config: IMDNConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.shallow = nn.Conv2d(3, c, 3, padding=1)
        self.blocks = nn.ModuleList(IMDB(channels=c) for _ in range(config.num_blocks))
        self.fuse = nn.Conv2d(c * config.num_blocks, c, 1)
        self.fuse_conv = nn.Conv2d(c, c, 3, padding=1)
        self.upsampler = PixelShuffleUpsampler(c, scale=config.scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        shallow = self.shallow(lr)
        stages = []
        feature = shallow
        for block in self.blocks:
            feature = block(feature)
            stages.append(feature)
        fused = F.leaky_relu(self.fuse(torch.cat(stages, dim=1)), _SLOPE)
        return self.upsampler(self.fuse_conv(fused) + shallow)
