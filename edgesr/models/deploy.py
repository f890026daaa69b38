"""The deployment form of a model: an equivalent module whose exported graph runs fast.

The PyTorch modules keep their training form (their state-dict keys are the weights files'
format). :func:`deploy` returns a deep copy rewritten so that ONNX Runtime, TensorRT and the
torch engine run fewer, larger and layout-friendly kernels, computing the same function up to
float32 rounding (export checks >= 60 dB and max |error| <= 1e-3 against the training form):

- **Stacked input folded** (OSFFNet's OISI, BSRN, LKDN, LMFN): ``pw(repeat(x, O))`` equals a
  pointwise conv on ``x`` whose weight is the sum of the O copies' weights, so the Tile node
  and the O-times wider first conv disappear.
- **Channel MLPs as 1x1 convs in NCHW** (OSFFNet's AEFD): ``Linear`` layers between two
  ``Transpose`` nodes become ``Conv2d`` 1x1 on the NCHW tensor; the LayerNorm before them
  normalises over the channel axis and its affine ``(gamma, beta)`` is folded into the first
  conv (``W' = W diag(gamma)``, ``b' = b + W beta``).
- **Channel LayerNorm** (LKDN, LMFN): ``(x - mean) * rsqrt(var + eps)``: the reciprocal is
  taken on the one-channel variance map and the full tensor is multiplied, not divided; in
  LMFN's IFM the affine is folded into the 1x1 expansion that follows.
- **Contrast statistic** (CCA): the spatial means are global average pools (ONNX
  ``GlobalAveragePool``, which ONNX Runtime's blocked-layout kernels accept; ``ReduceMean``
  forces a layout change) and the square is a multiply.

What is not rewritten, and why: BatchNorm in OSFFNet's AEFD normalises the block input, which
is also a residual operand, so there is no conv to fold it into (it stays one per-channel
affine node); BSConv's pointwise + depthwise pair is not merged into one dense conv, because
for C_in > 1 the merged conv has more Multi-Adds (C_in*C_out*k^2 against C_in*C_out + C_out*k^2).
The exported graph gets one more pass, :func:`edgesr.export.deploy_graph.gelu_fusable`, that
orders each GELU so ONNX Runtime fuses it into one op.

The rewrites swap a module's class for a subclass with another ``forward`` (as torch's own
fusion utilities do); parameters are rebuilt, never shared with the training model.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from edgesr.models.blocks import CCA, BSConvU, ChannelLayerNorm
from edgesr.models.lmfn import IFM
from edgesr.models.osffnet import AEFD

__all__ = ["ChannelMLP", "deploy", "is_deployed"]


def channel_normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Per-pixel normalisation over the channel axis of NCHW (LayerNorm without affine)."""
    centred = x - x.mean(dim=1, keepdim=True)
    variance = (centred * centred).mean(dim=1, keepdim=True)
    return centred * torch.rsqrt(variance + eps)


def _conv1x1_from(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Conv2d:
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], 1, bias=bias is not None)
    conv.weight.data.copy_(weight.reshape(*weight.shape, 1, 1))
    if bias is not None:
        conv.bias.data.copy_(bias)
    return conv


class ChannelMLP(nn.Module):
    """``x + fc2(GELU(fc1'(normalize(x))))`` on NCHW, fc1' carrying the LayerNorm's affine."""

    def __init__(self, norm: nn.LayerNorm, mlp: nn.Sequential) -> None:
        super().__init__()
        first, _, second = mlp
        gamma, beta = norm.weight.detach(), norm.bias.detach()
        weight = first.weight.detach()
        self.eps = float(norm.eps)
        self.fc1 = _conv1x1_from(weight * gamma[None, :], first.bias.detach() + weight @ beta)
        self.fc2 = _conv1x1_from(second.weight.detach(), second.bias.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.gelu(self.fc1(channel_normalize(x, self.eps))))


class _DeployedAEFD(AEFD):
    """OSFFNet's AEFD whose pixel MLP runs as :class:`ChannelMLP` (``channel_mlp``)."""

    def pixel_mlp(self, f_att: torch.Tensor) -> torch.Tensor:
        return self.channel_mlp(f_att)


class _DeployedCCA(CCA):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = F.adaptive_avg_pool2d(x, 1)
        centred = x - mean
        variance = F.adaptive_avg_pool2d(centred * centred, 1)
        std = variance.clamp_min(1e-12).sqrt()
        return x * torch.sigmoid(self.excite(F.relu(self.squeeze(std + mean))))


class _DeployedChannelLayerNorm(ChannelLayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_normalize(x, self.eps) * self.weight[:, None, None] + self.bias[:, None, None]


class _AffineFreeNorm(nn.Module):
    """A ChannelLayerNorm whose affine was folded into the conv after it."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_normalize(x, self.eps)


def _fold_stacked_input(model: nn.Module) -> None:
    copies = int(getattr(model, "copies", 1))
    shallow = getattr(model, "shallow", None)
    if copies <= 1 or not isinstance(shallow, BSConvU):
        return
    weight = shallow.pw.weight.detach()  # [C, 3 * copies, 1, 1]; input channel = copy*3 + rgb
    summed = weight.reshape(weight.shape[0], copies, -1, 1, 1).sum(dim=1)
    shallow.pw = nn.Conv2d(summed.shape[1], summed.shape[0], 1, bias=False)
    shallow.pw.weight.data.copy_(summed)
    model.copies = 1


def _fold_norm_into_expand(ifm: nn.Module) -> None:
    """LMFN's IFM: ``expand(norm(x))`` -> ``expand'(normalize(x))``."""
    norm, expand = ifm.norm, ifm.expand
    weight = expand.weight.detach()[:, :, 0, 0]
    folded = _conv1x1_from(weight * norm.weight.detach()[None, :],
                           expand.bias.detach() + weight @ norm.bias.detach())
    ifm.norm, ifm.expand = _AffineFreeNorm(norm.eps), folded


def deploy(model: nn.Module) -> nn.Module:
    """An evaluation-mode deep copy of ``model`` in deployment form (see the module notes)."""
    deployed = copy.deepcopy(model).eval()
    _fold_stacked_input(deployed)
    for module in list(deployed.modules()):
        if isinstance(module, AEFD):
            module.channel_mlp = ChannelMLP(module.mlp_norm, module.mlp)
            del module.mlp_norm, module.mlp
            module.__class__ = _DeployedAEFD
        elif isinstance(module, IFM):
            _fold_norm_into_expand(module)
        elif type(module) is CCA:
            module.__class__ = _DeployedCCA
        elif type(module) is ChannelLayerNorm:
            module.__class__ = _DeployedChannelLayerNorm
    deployed.deployed = True
    return deployed


def is_deployed(model: nn.Module) -> bool:
    return bool(getattr(model, "deployed", False))
