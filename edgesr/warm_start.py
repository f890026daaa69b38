"""Warm starts: OSFFNet from a trained BSRN, LMFN from a trained LKDN, of the same scale.

Each new model shares most of its layers with its donor (docs/weights.md). Shared tensors are
copied; modules the donor lacks start as identities, so the warm model computes its donor's
function wherever the architecture allows it, and fine-tuning starts from the donor's quality
instead of from noise.

LMFN from LKDN: identical backbone and LKA cells (blocks 1, 4, 7). MSM cells return
``GELU(fuse(.)) * x``: a zero fuse weight with bias GELU^-1(1) makes them ``x``. IFM cells return
``project(.) + x``: a zero projection makes them ``x``. The only difference left from LKDN is
that those five blocks modulate by 1 where LKDN's LKA modulated.

OSFFNet from BSRN: the AEFD block is BSRN's ESDB with a BatchNorm in front, an MLP after and
one change inside (refine steps 2 and 3 also read the BatchNorm output, eq. 7). BatchNorm at its
initial statistics is the identity in eval mode (so train with ``freeze_batchnorm``); the MLP's
last Linear starts at zero; SFGC's scalars start at zero; each DRF multiplies
``ERB(x) = GELU(BSConv(x) + x)`` by ``CCA(x) = x * sigmoid(.)``: with ``BSConv(x) = c - x``
(pointwise -I, depthwise centre tap 1, bias c) and CCA's excite weight zero with bias b,
``DRF(x) = GELU(c) * sigmoid(b) * x``, which is ``x`` for GELU(c) = 1 / sigmoid(b). OISI stacks
the image 8 times where BSRN stacks it 4 times: BSRN's first pointwise weights, repeated twice
and halved, give the same feature. Only the eq. 7 change is not the donor's function.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import torch
from torch import nn

from edgesr.errors import WeightsError

log = logging.getLogger(__name__)

DONORS = {"lmfn": "lkdn", "osffnet": "bsrn"}  # warm model family -> donor family
_CCA_OPEN_BIAS = 4.0  # sigmoid(4) = 0.982: the DRF's CCA starts nearly fully open


def gelu_inverse(target: float) -> float:
    """The positive z with GELU(z) = target (bisection; GELU is increasing for z > 0)."""
    low, high = 0.0, max(1.0, 2 * target)
    gelu = lambda z: z * 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    for _ in range(80):
        mid = (low + high) / 2
        low, high = (mid, high) if gelu(mid) < target else (low, mid)
    return (low + high) / 2


def _copy_matching(model: nn.Module, donor: Mapping[str, torch.Tensor],
                   renames: Mapping[str, str]) -> list[str]:
    """Copy donor tensors into same-named (after ``renames``) same-shaped model tensors."""
    own = model.state_dict()
    copied = []
    with torch.no_grad():
        for name, tensor in own.items():
            source = renames.get(name, name)
            if source in donor and donor[source].shape == tensor.shape:
                tensor.copy_(donor[source])
                copied.append(name)
    return copied


def _zero_(*tensors: torch.Tensor) -> None:
    for tensor in tensors:
        nn.init.zeros_(tensor)


@torch.no_grad()
def _identity_msm(msm: nn.Module) -> None:
    _zero_(msm.fuse.weight)
    msm.fuse.bias.fill_(gelu_inverse(1.0))


@torch.no_grad()
def warm_start_lmfn(model: nn.Module, donor: Mapping[str, torch.Tensor]) -> list[str]:
    copied = _copy_matching(model, donor, {})
    for block in model.blocks:
        cell = block.cell
        if type(cell).__name__ == "MSM":
            _identity_msm(cell)
        elif type(cell).__name__ == "IFM":
            _zero_(cell.project.weight, cell.project.bias)
    return copied


def _osffnet_renames(model: nn.Module) -> dict[str, str]:
    """Our OSFFNet names -> BSRN names where they differ (ERB wraps its BSConv in ``.conv``)."""
    renames = {}
    for name in model.state_dict():
        if ".refine." in name and ".conv." in name:
            renames[name] = name.replace(".conv.", ".", 1)
    return renames


@torch.no_grad()
def _identity_drf(drf: nn.Module) -> None:
    conv = drf.erb.conv
    channels = conv.pw.weight.shape[0]
    conv.pw.weight.copy_(-torch.eye(channels).reshape(channels, channels, 1, 1))
    _zero_(conv.dw.weight)
    centre = conv.dw.weight.shape[-1] // 2
    conv.dw.weight[:, 0, centre, centre] = 1.0
    open_gate = 1 / (1 + math.exp(-_CCA_OPEN_BIAS))
    conv.dw.bias.fill_(gelu_inverse(1.0 / open_gate))
    _zero_(drf.cca.excite.weight)
    drf.cca.excite.bias.fill_(_CCA_OPEN_BIAS)


@torch.no_grad()
def warm_start_osffnet(model: nn.Module, donor: Mapping[str, torch.Tensor]) -> list[str]:
    copied = _copy_matching(model, donor, _osffnet_renames(model))
    donor_pw = donor["shallow.pw.weight"]  # (C, 3 * donor copies, 1, 1)
    own_pw = model.shallow.pw.weight
    repeats = own_pw.shape[1] // donor_pw.shape[1]
    if repeats * donor_pw.shape[1] != own_pw.shape[1]:
        raise WeightsError(f"cannot spread {donor_pw.shape[1]} input channels over {own_pw.shape[1]}")
    own_pw.copy_(donor_pw.repeat(1, repeats, 1, 1) / repeats)
    copied.append("shallow.pw.weight")
    for block in model.blocks:
        _zero_(block.mlp[2].weight, block.mlp[2].bias)
    if model.sfgc_weights is not None:
        _zero_(model.sfgc_weights)
    for drf in model.drf or ():
        _identity_drf(drf)
    return copied


def warm_start(model: nn.Module, family: str, donor: Mapping[str, torch.Tensor]) -> list[str]:
    """Warm-start ``model`` (of ``family``) from a donor state dict in edgesr names; returns
    the names of the tensors copied from the donor."""
    starters = {"lmfn": warm_start_lmfn, "osffnet": warm_start_osffnet}
    if family not in starters:
        raise WeightsError(f"no warm start for {family!r}; warm starts exist for "
                           + ", ".join(f"{k} (from {v})" for k, v in DONORS.items()))
    copied = starters[family](model, donor)
    total = sum(t.numel() for t in model.state_dict().values())
    shared = sum(model.state_dict()[n].numel() for n in copied)
    log.info("warm start of %s from %s: %d tensors, %.0f%% of the values, copied",
             family, DONORS[family], len(copied), 100 * shared / total)
    return copied
