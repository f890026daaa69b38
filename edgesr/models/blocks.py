"""Building blocks shared by OSFFNet, LMFN and the baselines (DESIGN section 3).

Parameter counts noted here are what the papers' tables need; tests pin them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BSConvU(nn.Module):
    """Blueprint separable conv (unconstrained): 1x1 pointwise (no bias), then k x k depthwise.

    Params = in*out + out*k^2 + out. No norm, no activation (as BSRN uses it).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        pad = kernel_size // 2 * dilation if padding is None else padding
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.dw = nn.Conv2d(
            out_channels, out_channels, kernel_size,
            stride=stride, padding=pad, dilation=dilation, groups=out_channels, bias=True,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dw(self.pw(x))


_VARIANCE_FLOOR = 1e-12


class CCA(nn.Module):
    """Contrast-aware channel attention (IMDN): statistic = spatial std + spatial mean.

    The std is the population std (divide by H*W), as IMDN's stdv_channels computes it.
    580 params at C=64 with reduction 16.
    """

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.squeeze = nn.Conv2d(channels, hidden, 1)
        self.excite = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        # clamp_min: a flat channel (a patch of clear sky) has variance 0, where sqrt's gradient
        # is infinite and training turns to NaN; the forward value changes only below 1e-12.
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).clamp_min(_VARIANCE_FLOOR).sqrt()
        weights = torch.sigmoid(self.excite(F.relu(self.squeeze(std + mean))))
        return x * weights


class ESA(nn.Module):
    """Enhanced spatial attention (RFANet/BSRN variant) with BSConvU or plain convs.

    f = C/4. 4,064 params at C=64 with BSConvU.
    """

    def __init__(self, channels: int, *, conv: type[nn.Module] = BSConvU) -> None:
        super().__init__()
        f = channels // 4
        self.reduce = nn.Conv2d(channels, f, 1)
        self.skip = nn.Conv2d(f, f, 1)
        self.down = conv(f, f, 3, stride=2, padding=0)
        self.conv_max = conv(f, f, 3)
        self.conv3 = conv(f, f, 3)
        self.conv3_ = conv(f, f, 3)
        self.expand = nn.Conv2d(f, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1_ = self.reduce(x)
        c1 = self.down(c1_)
        v_max = F.max_pool2d(c1, kernel_size=7, stride=3)
        v_range = F.gelu(self.conv_max(v_max))
        c3 = F.gelu(self.conv3(v_range))
        c3 = self.conv3_(c3)
        c3 = F.interpolate(c3, size=x.shape[2:], mode="bilinear", align_corners=False)
        mask = torch.sigmoid(self.expand(c3 + self.skip(c1_)))
        return x * mask


class ERB(nn.Module):
    """Efficient residual block: GELU(BSConvU(C->C, d)(x) + x)."""

    def __init__(self, channels: int, *, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = BSConvU(channels, channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.conv(x) + x)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of an NCHW tensor (per pixel), eps 1e-5 like nn.LayerNorm.

    Written with mean/var instead of permute+nn.LayerNorm so the ONNX graph stays NCHW
    (no Transpose pairs around every norm).
    """

    def __init__(self, channels: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class PixelShuffleUpsampler(nn.Module):
    """3x3 conv C -> out*s^2 (bias), then PixelShuffle(s)."""

    def __init__(self, channels: int, *, scale: int, out_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, out_channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


def stack_input(lr: torch.Tensor, copies: int) -> torch.Tensor:
    """Original-image stacking (OISI / BSRN's input trick): repeat the image along channels."""
    return lr.repeat(1, copies, 1, 1) if copies > 1 else lr


class ConcatFusionSR(nn.Module):
    """The reconstruction tail OSFFNet, BSRN and LKDN share (BSRN's design).

    The per-block outputs are concatenated, fused by a 1x1 conv + GELU and a 3x3 BSConvU,
    added to the shallow feature and upsampled. Attribute names (``fuse``, ``fuse_conv``,
    ``upsampler``) are part of the weights files' keys.
    """

    def _build_fusion(self, *, channels: int, num_blocks: int, scale: int) -> None:
        self.fuse = nn.Conv2d(channels * num_blocks, channels, 1)
        self.fuse_conv = BSConvU(channels, channels, 3)
        self.upsampler = PixelShuffleUpsampler(channels, scale=scale)

    def forward_stages(self, lr: torch.Tensor, *, copies: int) -> torch.Tensor:
        """Stacked input -> ``self.shallow`` -> ``self.blocks`` in a chain -> reconstruct."""
        shallow = self.shallow(stack_input(lr, copies))
        stages = []
        feature = shallow
        for block in self.blocks:
            feature = block(feature)
            stages.append(feature)
        return self.reconstruct(stages, shallow)

    def reconstruct(self, stages: list[torch.Tensor], shallow: torch.Tensor) -> torch.Tensor:
        fused = self.fuse_conv(F.gelu(self.fuse(torch.cat(stages, dim=1))))
        return self.upsampler(fused + shallow)
