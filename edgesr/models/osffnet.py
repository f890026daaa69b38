"""OSFFNet: Omni-Stage Feature Fusion Network (Wang and Zhang, AAAI 2024).

Reconstructed from the paper's equations (1)-(10) and DESIGN section 3; it reproduces every
parameter count the paper publishes (515,732 / 524,387 / 536,504 at x2/x3/x4 and the
Table 2 / Table 4 ablations), which pins down each layer's shape.

Choices the paper leaves open, and what we chose:
- The paper's text swaps the names H_D/H_R in eq. (7); the parameter counts fix which branch
  is the 1x1 "distilled" one (64->32) and which is the ERB "refined" one (64->64).
- The fourth distillation step reads the third refined feature (as IMDB/BSRN do).
- The AEFD MLP is per-pixel ``nn.Linear`` layers after a channel LayerNorm: the paper's
  Multi-Adds counter counted only Conv2d layers, which is why 22.0 G excludes the MLP.
- The SFGC scalars lambda_k are one parameter of length N initialised to 1.0 (the paper gives
  no init); lambda_N is counted as the paper counts it but has no input to scale (eq. 2 uses
  lambda_1..lambda_{N-1}), so it receives a zero gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgesr.errors import ConfigError
from edgesr.models.blocks import CCA, ERB, ESA, BSConvU, ConcatFusionSR, stack_input


@dataclass(frozen=True, kw_only=True)
class OSFFNetConfig:
    scale: int = 4
    channels: int = 64  # C
    num_blocks: int = 8  # N (AEFD modules)
    stack_copies: int = 8  # O (OISI); 1 means no stacking
    drf_kernel_sizes: tuple[int, ...] = (1, 1, 3, 3, 5, 5, 7, 7)  # D
    oisi: bool = True
    sfgc: bool = True
    mfdf: bool = True
    esa: bool = True
    cca: bool = True


class AEFD(nn.Module):
    """Attention-Enhanced Feature Distillation block (52,548 params at C=64)."""

    def __init__(self, *, channels: int, esa: bool = True, cca: bool = True) -> None:
        super().__init__()
        distilled = channels // 2
        self.norm = nn.BatchNorm2d(channels)
        self.distill = nn.ModuleList(nn.Conv2d(channels, distilled, 1) for _ in range(3))
        self.refine = nn.ModuleList(ERB(channels, kernel_size=3) for _ in range(3))
        self.distill_last = BSConvU(channels, distilled, 3)
        self.fuse = nn.Conv2d(distilled * 4, channels, 1)
        self.esa = ESA(channels) if esa else nn.Identity()
        self.cca = CCA(channels) if cca else nn.Identity()
        self.mlp_norm = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, channels * 2), nn.GELU(), nn.Linear(channels * 2, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f_bn = self.norm(x)
        distilled = []
        refined = f_bn
        for step, (distill, refine) in enumerate(zip(self.distill, self.refine)):
            distilled.append(F.gelu(distill(refined)))
            # eq. (7): step 1 refines f_bn; later steps refine f_r + f_bn.
            refined = refine(refined if step == 0 else refined + f_bn)
        distilled.append(F.gelu(self.distill_last(refined)))
        fused = self.fuse(torch.cat(distilled, dim=1))
        f_att = self.cca(self.esa(fused)) + f_bn
        return self.pixel_mlp(f_att)

    def pixel_mlp(self, f_att: torch.Tensor) -> torch.Tensor:
        """``f_att + MLP(LayerNorm(f_att))`` per pixel (the deployment form runs it as 1x1 convs)."""
        pixels = f_att.permute(0, 2, 3, 1)  # NHWC: LayerNorm and MLP act per pixel
        pixels = pixels + self.mlp(self.mlp_norm(pixels))
        return pixels.permute(0, 3, 1, 2)


class DRF(nn.Module):
    """Dynamic receptive field: ERB_d(x) * CCA(x)."""

    def __init__(self, *, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.erb = ERB(channels, kernel_size=kernel_size)
        self.cca = CCA(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.erb(x) * self.cca(x)


class OSFFNet(ConcatFusionSR):
    """OSFFNet with the paper's ablation switches (Table 2: OISI/SFGC/MFDF, Table 4: ESA/CCA)."""

    def __init__(self, *, config: OSFFNetConfig) -> None:
        super().__init__()
        if len(config.drf_kernel_sizes) != config.num_blocks:
            raise ConfigError(
                f"drf_kernel_sizes has {len(config.drf_kernel_sizes)} entries, "
                f"expected one per block ({config.num_blocks})"
            )
        self.config = config
        c = config.channels
        self.copies = config.stack_copies if config.oisi else 1
        self.shallow = BSConvU(3 * self.copies, c, 3)
        self.blocks = nn.ModuleList(
            AEFD(channels=c, esa=config.esa, cca=config.cca) for _ in range(config.num_blocks)
        )
        self.sfgc_weights = nn.Parameter(torch.ones(config.num_blocks)) if config.sfgc else None
        self.drf = (
            nn.ModuleList(DRF(channels=c, kernel_size=d) for d in config.drf_kernel_sizes)
            if config.mfdf
            else None
        )
        self._build_fusion(channels=c, num_blocks=config.num_blocks, scale=config.scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        f_s = self.shallow(stack_input(lr, self.copies))
        stages = []
        feature = f_s
        for k, block in enumerate(self.blocks):
            if k > 0 and self.sfgc_weights is not None:
                feature = feature + self.sfgc_weights[k - 1] * f_s
            feature = block(feature)
            stages.append(self.drf[k](feature) if self.drf is not None else feature)
        return self.reconstruct(stages, f_s)
