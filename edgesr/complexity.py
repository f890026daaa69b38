"""Parameters and Multi-Adds at a 1280x720 HR output, in two conventions (DESIGN section 5).

``paper``: forward hooks on every ``nn.Conv2d``; each output element costs
(C_in / groups) * k_h * k_w multiply-adds, plus 1 when the conv has a bias. Nothing else
counts (no Linear, no norms, no interpolation). This is the counter OSFFNet's and BSRN's
tables used, so it reproduces their numbers.

``full``: every multiply-add of the forward pass, counted by ``torch.utils.flop_counter.
FlopCounterMode`` at the ATen level (it sees through any module structure), with MACs =
FLOPs / 2 and these rules:
- convolution, Linear (addmm/mm), matmul/bmm: torch's own formulas (bias adds not counted,
  as torch counts them);
- interpolation: bilinear 4 multiply-adds per output element, bicubic 16, nearest 0;
- grid sampling (DSConv): bilinear 4 per output element;
- normalisation (BatchNorm/LayerNorm/GroupNorm): 2 per element (scale and shift; the mean and
  variance reductions are accumulations, not multiply-adds);
- elementwise products of attention maps and activations: not counted (neither is in any
  paper's convention; they are memory-bound, not MAC-bound).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgesr.errors import ConfigError
from edgesr.models.registry import count_params

HR_WIDTH, HR_HEIGHT = 1280, 720
aten = torch.ops.aten


def lr_size_for_hr(*, scale: int, width: int = HR_WIDTH, height: int = HR_HEIGHT) -> tuple[int, int]:
    """LR (height, width) whose x`scale` output is the given HR size (426x240 at x3: floor)."""
    return height // scale, width // scale


@dataclass(frozen=True, kw_only=True)
class Complexity:
    params: int
    paper_multi_adds: int
    paper_nobias_multi_adds: int  # the paper convention without bias (LKDN's)
    full_multi_adds: int
    lr_height: int
    lr_width: int

    @property
    def paper_g(self) -> float:
        return self.paper_multi_adds / 1e9

    @property
    def paper_nobias_g(self) -> float:
        return self.paper_nobias_multi_adds / 1e9

    @property
    def full_g(self) -> float:
        return self.full_multi_adds / 1e9


def paper_multi_adds(model: nn.Module, lr: torch.Tensor) -> tuple[int, int]:
    """Multi-Adds under the paper convention, ``(with bias, without bias)``, in one pass.

    Conv2d layers only; a bias counts 1 per output element. Without biases is the convention
    LKDN's paper used (18.3 G at x4).
    """
    weights = biases = 0

    def hook(conv: nn.Conv2d, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal weights, biases
        weights += output.numel() * (conv.in_channels // conv.groups) * math.prod(conv.kernel_size)
        biases += output.numel() if conv.bias is not None else 0

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(lr)
    finally:
        for h in handles:
            h.remove()
    return weights + biases, weights


def _per_output(macs_per_element: int):
    """A FlopCounterMode formula: FLOPs = 2 * MACs per output element."""

    def formula(*args, out_shape=None, **kwargs) -> int:
        return 2 * macs_per_element * math.prod(out_shape)

    return formula


def _norm_formula(*args, out_shape=None, **kwargs) -> int:
    shape = out_shape[0] if isinstance(out_shape, (tuple, list)) and isinstance(out_shape[0], (tuple, list, torch.Size)) else out_shape
    return 2 * 2 * math.prod(shape)


_FULL_EXTRA_RULES = {
    aten.upsample_bilinear2d: _per_output(4),
    aten.upsample_bicubic2d: _per_output(16),
    aten.upsample_nearest2d: _per_output(0),
    aten.grid_sampler_2d: _per_output(4),
    aten.native_batch_norm: _norm_formula,
    aten._native_batch_norm_legit_no_training: _norm_formula,
    aten.native_layer_norm: _norm_formula,
    aten.native_group_norm: _norm_formula,
}


def full_multi_adds(model: nn.Module, lr: torch.Tensor) -> int:
    """Every multiply-add of the forward pass, counted at the ATen level."""
    counter = FlopCounterMode(display=False, custom_mapping=_FULL_EXTRA_RULES)
    with torch.no_grad(), counter:
        model(lr)
    return counter.get_total_flops() // 2


def measure(model: nn.Module, *, scale: int, width: int = HR_WIDTH, height: int = HR_HEIGHT) -> Complexity:
    """Params and both Multi-Adds figures for an HR output of ``width`` x ``height``."""
    if scale < 1:
        raise ConfigError(f"scale must be a positive integer, got {scale}")
    lr_h, lr_w = lr_size_for_hr(scale=scale, width=width, height=height)
    # Counting needs shapes, not values: a copy on the meta device runs in milliseconds.
    meta_model = copy.deepcopy(model).to("meta").eval()
    lr = torch.zeros(1, 3, lr_h, lr_w, device="meta")
    with_bias, without_bias = paper_multi_adds(meta_model, lr)
    return Complexity(
        params=count_params(model),
        paper_multi_adds=with_bias,
        paper_nobias_multi_adds=without_bias,
        full_multi_adds=full_multi_adds(meta_model, lr),
        lr_height=lr_h,
        lr_width=lr_w,
    )
