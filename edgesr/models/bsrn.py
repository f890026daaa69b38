"""BSRN: Blueprint Separable Residual Network (Li et al., CVPRW 2022), the paper's x4 model.

C=64, 8 ESDB blocks, input stacked 4x, BSConvU everywhere, ESA + CCA in each block.
352,400 / 340,283 / 331,628 params at x4/x3/x2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgesr.models.blocks import CCA, ESA, BSConvU, ConcatFusionSR


@dataclass(frozen=True, kw_only=True)
class BSRNConfig:
    scale: int = 4
    channels: int = 64
    num_blocks: int = 8
    stack_copies: int = 4


class ESDB(nn.Module):
    """Efficient separable distillation block: 3 distill/refine steps, ESA, CCA, residual."""

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        distilled = channels // 2
        self.distill = nn.ModuleList(nn.Conv2d(channels, distilled, 1) for _ in range(3))
        self.refine = nn.ModuleList(BSConvU(channels, channels, 3) for _ in range(3))
        self.distill_last = BSConvU(channels, distilled, 3)
        self.fuse = nn.Conv2d(distilled * 4, channels, 1)
        self.esa = ESA(channels)
        self.cca = CCA(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        refined = x
        for distill, refine in zip(self.distill, self.refine):
            distilled.append(F.gelu(distill(refined)))
            refined = F.gelu(refine(refined) + refined)
        distilled.append(F.gelu(self.distill_last(refined)))
        out = self.fuse(torch.cat(distilled, dim=1))
        return self.cca(self.esa(out)) + x


class BSRN(ConcatFusionSR):
    def __init__(self, *, config: BSRNConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.copies = config.stack_copies  # deploy() folds the stacking into the shallow conv
        self.shallow = BSConvU(3 * config.stack_copies, c, 3)
        self.blocks = nn.ModuleList(ESDB(channels=c) for _ in range(config.num_blocks))
        self._build_fusion(channels=c, num_blocks=config.num_blocks, scale=config.scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(lr, copies=self.copies)
