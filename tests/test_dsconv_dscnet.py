"""edgesr's DSConv (module and numpy reference) against DSCNet's published method
(tests/dscnet_oracle.py), both morphs, several kernel lengths and extend scopes.

The offsets are driven hard (offset conv weights x8, so tanh saturates) and extend_scope
reaches 2: points walk several pixels and many are clamped at the borders, where the ways
to get DSConv wrong show.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgesr.ops.dsconv import DSConv
from edgesr.ops.dsconv_reference import dsconv_module_reference

from dscnet_oracle import dscnet_forward

CASES = [  # (kernel_size, morph, extend_scope, height, width)
    (3, 0, 1.0, 6, 7), (3, 1, 1.0, 7, 6), (5, 0, 2.0, 5, 9), (5, 1, 2.0, 9, 5),
    (9, 0, 1.0, 8, 8), (9, 1, 0.5, 8, 8), (7, 1, 2.0, 2, 11), (7, 0, 2.0, 11, 2),
]


def _module(kernel_size: int, morph: int, extend_scope: float, seed: int) -> DSConv:
    torch.manual_seed(seed)
    module = DSConv(in_channels=4, out_channels=8, kernel_size=kernel_size, morph=morph,
                    extend_scope=extend_scope).eval()
    assert module.norm_groups == 8 // 4  # DSCNet's out // 4 groups, so the two agree
    with torch.no_grad():
        module.offset_conv.weight.mul_(8.0)
        for norm in (module.offset_norm, module.norm):  # non-trivial affine parameters
            norm.weight.normal_(1.0, 0.3)
            norm.bias.normal_(0.0, 0.3)
    return module


@pytest.mark.parametrize(("kernel_size", "morph", "extend_scope", "height", "width"), CASES)
def test_dsconv_matches_dscnets_method(kernel_size: int, morph: int, extend_scope: float,
                                       height: int, width: int) -> None:
    module = _module(kernel_size, morph, extend_scope, seed=kernel_size + 10 * morph)
    x = torch.randn(2, 4, height, width, generator=torch.Generator().manual_seed(3))
    params = dict(module.state_dict())
    expected = dscnet_forward(x, params, kernel_size=kernel_size, morph=morph, extend_scope=extend_scope)
    assert expected.abs().max() > 0.1  # not a degenerate all-zero output
    with torch.no_grad():  # the offsets saturate: the end points walk (K // 2) * scope pixels
        assert module.offsets(x).abs().max() > 0.9
    with torch.no_grad():
        got = module(x)
    torch.testing.assert_close(got.double(), expected, atol=1e-4, rtol=1e-4)
    reference = dsconv_module_reference(x.numpy(), {k: v.numpy() for k, v in params.items()},
                                        kernel_size=kernel_size, morph=morph, extend_scope=extend_scope,
                                        norm_groups=module.norm_groups)
    np.testing.assert_allclose(reference, expected.numpy(), atol=1e-9)


@pytest.mark.parametrize("morph", [0, 1])
def test_the_oracle_tells_the_original_typo_apart(morph: int) -> None:
    """DSCNet's first file stopped the snake walk one step early; edgesr (after the design)
    walks to both ends. The oracle with the typo must disagree with edgesr, else it could not
    catch the typo."""
    module = _module(5, morph, 1.0, seed=7)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    params = dict(module.state_dict())
    with torch.no_grad():
        got = module(x).double()
    typo = dscnet_forward(x, params, kernel_size=5, morph=morph, extend_scope=1.0, full_walk=False)
    fixed = dscnet_forward(x, params, kernel_size=5, morph=morph, extend_scope=1.0)
    assert (got - typo).abs().max() > 1e-2
    assert (got - fixed).abs().max() < 1e-4
