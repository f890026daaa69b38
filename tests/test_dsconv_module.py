"""The DSConv module (parameters, norm groups, against the numpy oracle and DSCNet, odd sizes,
batches, the override) and its refusals. The function and its gradients are in test_dsconv.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgesr.errors import ConfigError, EdgeSRError
from edgesr.ops.dsconv import (
    DSConv,
    dsconv_norm_groups,
    dsconv_override,
    dynamic_snake_conv,
)
from edgesr.ops.dsconv_reference import dsconv_module_reference

from dscnet_oracle import dscnet_forward


# --------------------------------------------------------------------------- module


def test_parameter_count_and_names() -> None:
    for morph in (0, 1):
        module = DSConv(in_channels=14, out_channels=14, kernel_size=3, morph=morph)
        counts = {
            name: sum(p.numel() for p in child.parameters())
            for name, child in module.named_children()
        }
        assert counts == {
            "offset_conv": 762, "offset_norm": 12, "collapse": 602, "norm": 28, "act": 0
        }
        assert sum(p.numel() for p in module.eval().parameters()) == 1404
        expected_kernel = (3, 1) if morph == 0 else (1, 3)
        assert module.collapse.kernel_size == expected_kernel
        assert module.collapse.stride == expected_kernel
        assert sorted(module.state_dict()) == sorted(
            f"{m}.{p}" for m in ("offset_conv", "offset_norm", "collapse", "norm")
            for p in ("weight", "bias")
        )
        assert module.norm.num_groups == 2


@pytest.mark.parametrize(
    ("out_channels", "groups"),
    [(64, 16), (56, 14), (16, 4), (14, 2), (7, 1), (4, 1), (2, 1), (1, 1), (18, 3), (30, 6)],
)
def test_norm_group_rule(out_channels: int, groups: int) -> None:
    assert dsconv_norm_groups(out_channels) == groups
    module = DSConv(in_channels=3, out_channels=out_channels, kernel_size=3, morph=0)
    assert module.norm.num_groups == groups


@pytest.mark.parametrize("morph", [0, 1])
def test_module_matches_oracle(morph: int) -> None:
    torch.manual_seed(5 + morph)
    module = DSConv(in_channels=3, out_channels=6, kernel_size=5, morph=morph, extend_scope=2.0)
    with torch.no_grad():  # make the offsets matter: non-trivial GroupNorm affine
        module.offset_norm.weight.uniform_(0.5, 2.0)
        module.offset_norm.bias.uniform_(-0.5, 0.5)
    module.eval()
    x = torch.randn(1, 3, 7, 6)
    with torch.no_grad():
        out = module(x)
    params = {k: v.numpy() for k, v in module.state_dict().items()}
    ref = dsconv_module_reference(
        x.numpy(), params, kernel_size=5, morph=morph, extend_scope=2.0,
        norm_groups=module.norm_groups,
    )
    assert np.abs(out.numpy() - ref).max() < 1e-4


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1), (5, 7), (12, 3)])
def test_shapes_for_odd_sizes(size: tuple[int, int]) -> None:
    module = DSConv(in_channels=5, out_channels=7, kernel_size=3, morph=1).eval()
    x = torch.rand(2, 5, *size)
    with torch.no_grad():
        out = module(x)
    assert out.shape == (2, 7, *size)
    # values: the numpy reference, and where DSCNet's method is defined (H, W >= 2, out
    # channels divisible by 4 for its out // 4 groups: 8 here) DSCNet's method too
    params = {k: v.numpy() for k, v in module.state_dict().items()}
    ref = dsconv_module_reference(x.numpy(), params, kernel_size=3, morph=1, extend_scope=1.0,
                                  norm_groups=module.norm_groups)
    assert np.abs(out.numpy() - ref).max() < 1e-4
    if min(size) >= 2:
        torch.manual_seed(sum(size))
        eight = DSConv(in_channels=5, out_channels=8, kernel_size=3, morph=1).eval()
        with torch.no_grad():
            got = eight(x).double()
        expected = dscnet_forward(x, dict(eight.state_dict()), kernel_size=3, morph=1, extend_scope=1.0)
        assert (got - expected).abs().max() < 1e-4


def test_batch_images_are_independent() -> None:
    # GroupNorm (offsets and output) normalises per image: a batch gives each image's own
    # output. A norm over the batch (e.g. BatchNorm in training mode) fails this.
    torch.manual_seed(1)
    module = DSConv(in_channels=4, out_channels=4, kernel_size=7, morph=0).eval()
    x = torch.rand(3, 4, 11, 10)
    with torch.no_grad():
        together = module(x)
        alone = torch.cat([module(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_override_is_scoped() -> None:
    x = torch.rand(1, 2, 4, 4)
    offset = torch.zeros(1, 6, 4, 4)
    weight = torch.rand(3, 2, 3, 1)
    calls: list[int] = []

    def impl(x_, off_, w_, b_, *, kernel_size, morph, extend_scope):  # type: ignore[no-untyped-def]
        calls.append(kernel_size)
        return torch.zeros(1, 3, 4, 4)

    with dsconv_override(impl):
        dynamic_snake_conv(x, offset, weight, None, kernel_size=3, morph=0, extend_scope=1.0)
    out = dynamic_snake_conv(x, offset, weight, None, kernel_size=3, morph=0, extend_scope=1.0)
    assert calls == [3]
    assert out.abs().sum() > 0


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 4},
        {"kernel_size": 1},
        {"kernel_size": 3.0},
        {"morph": 2},
        {"morph": True},
        {"extend_scope": float("nan")},
        {"out_channels": 0},
        {"in_channels": -1},
    ],
)
def test_bad_configuration_raises_config_error(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "morph": 0}
    args.update(kwargs)
    with pytest.raises(ConfigError):
        DSConv(**args)  # type: ignore[arg-type]


def test_bad_shapes_raise_edgesr_error() -> None:
    x = torch.rand(1, 2, 4, 4)
    with pytest.raises(EdgeSRError, match="offset"):
        dynamic_snake_conv(
            x, torch.zeros(1, 5, 4, 4), torch.rand(3, 2, 3, 1), None,
            kernel_size=3, morph=0, extend_scope=1.0,
        )
    with pytest.raises(EdgeSRError, match="morph 1"):
        dynamic_snake_conv(
            x, torch.zeros(1, 6, 4, 4), torch.rand(3, 2, 3, 1), None,
            kernel_size=3, morph=1, extend_scope=1.0,
        )
