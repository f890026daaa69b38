"""Dynamic snake convolution: torch implementation against the numpy oracle (DESIGN section 3).
The DSConv module and its refusals are in test_dsconv_module.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgesr.ops.dsconv import (
    DSConv,
    dynamic_snake_conv,
    snake_matrix,
)
from edgesr.ops.dsconv_reference import (
    dsconv_sample_reference,
    dynamic_snake_conv_reference,
    snake_accumulate_reference,
)



def _weight(generator: torch.Generator, out_c: int, in_c: int, k: int, morph: int) -> torch.Tensor:
    shape = (out_c, in_c, k, 1) if morph == 0 else (out_c, in_c, 1, k)
    # conv-like scale (fan-in), so the float32 tolerance is meaningful
    return torch.randn(shape, generator=generator) / (in_c * k) ** 0.5


# --------------------------------------------------------------------------- snake accumulation


def test_snake_accumulation_reaches_both_ends() -> None:
    # K = 5, centre 2: Δ' = [Δ0+Δ1, Δ1, 0, Δ3, Δ3+Δ4]; the centre offset is ignored.
    delta = np.array([0.25, 0.25, 9.0, 0.5, 0.25])
    expected = np.array([0.5, 0.25, 0.0, 0.5, 0.75])
    np.testing.assert_allclose(snake_accumulate_reference(delta), expected)
    np.testing.assert_allclose(snake_matrix(5, dtype=torch.float64).numpy() @ delta, expected)


@pytest.mark.parametrize("k", [3, 5, 7, 9])
def test_snake_matrix_matches_reference(k: int) -> None:
    rng = np.random.default_rng(k)
    delta = rng.standard_normal((k, 4))
    np.testing.assert_allclose(
        snake_matrix(k, dtype=torch.float64).numpy() @ delta,
        snake_accumulate_reference(delta),
        atol=1e-12,
    )


# --------------------------------------------------------------------------- function vs oracle


@pytest.mark.parametrize("k", [3, 5, 9])
@pytest.mark.parametrize("morph", [0, 1])
@pytest.mark.parametrize("size", [(7, 11), (13, 5), (1, 6)])
def test_function_matches_oracle(k: int, morph: int, size: tuple[int, int]) -> None:
    height, width = size
    g = torch.Generator().manual_seed(1000 * k + 10 * morph + height)
    x = torch.randn(2, 3, height, width, generator=g)
    offset = torch.tanh(2.0 * torch.randn(2, 2 * k, height, width, generator=g))
    weight = _weight(g, 4, 3, k, morph)
    bias = torch.randn(4, generator=g)
    scope = 2.5

    # the offsets are large enough that points reach and pass the border
    delta = offset[:, k:] if morph else offset[:, :k]
    acc = torch.einsum("kj,njhw->nkhw", snake_matrix(k), delta) * scope
    if morph == 0:
        moving = torch.arange(height).view(1, 1, -1, 1) + acc
        limit = height - 1
    else:
        moving = torch.arange(width).view(1, 1, 1, -1) + acc
        limit = width - 1
    assert bool(((moving < 0) | (moving > limit)).any())

    out = dynamic_snake_conv(
        x, offset, weight, bias, kernel_size=k, morph=morph, extend_scope=scope
    )
    ref = dynamic_snake_conv_reference(
        x.numpy(), offset.numpy(), weight.numpy(), bias.numpy(),
        kernel_size=k, morph=morph, extend_scope=scope,
    )
    assert out.shape == (2, 4, height, width)
    assert out.dtype == torch.float32
    assert np.abs(out.numpy().astype(np.float64) - ref).max() < 1e-5


def test_zero_offsets_equal_plain_conv_over_replicated_border() -> None:
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 3, 6, 9, generator=g)
    for morph in (0, 1):
        for k in (3, 5):
            c = k // 2
            weight = _weight(g, 2, 3, k, morph)
            bias = torch.randn(2, generator=g)
            offset = torch.zeros(1, 2 * k, 6, 9)
            out = dynamic_snake_conv(
                x, offset, weight, bias, kernel_size=k, morph=morph, extend_scope=1.0
            )
            if morph == 0:  # points along x: a (1, K) conv over x replicated left/right
                padded = F.pad(x, (c, c, 0, 0), mode="replicate")
                expected = F.conv2d(padded, weight.reshape(2, 3, 1, k), bias)
            else:  # points along y: a (K, 1) conv over x replicated top/bottom
                padded = F.pad(x, (0, 0, c, c), mode="replicate")
                expected = F.conv2d(padded, weight.reshape(2, 3, k, 1), bias)
            torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_hand_checked_tiny_case() -> None:
    # one channel, H=2, W=3, K=3, morph 0, all-ones collapse weight, no bias
    x = torch.tensor([[[[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]]]])
    weight = torch.ones(1, 1, 3, 1)
    offset = torch.zeros(1, 6, 2, 3)
    out = dynamic_snake_conv(x, offset, weight, None, kernel_size=3, morph=0, extend_scope=1.0)
    # zero offsets: left + centre + right neighbours, border replicated
    torch.testing.assert_close(out, torch.tensor([[[[1.0, 3.0, 5.0], [31.0, 33.0, 35.0]]]]))

    # y-offsets 0.5 on the two outer points (the centre's own offset is ignored);
    # x-offsets must not matter for morph 0
    offset[:, 0] = 0.5
    offset[:, 1] = 7.0
    offset[:, 2] = 0.5
    offset[:, 3:] = -3.0
    out = dynamic_snake_conv(x, offset, weight, None, kernel_size=3, morph=0, extend_scope=1.0)
    # row 0, col 1: x(0.5, 0) + x(0, 1) + x(0.5, 2) = 5 + 1 + 7 = 13
    # row 1: y = 1.5 is clamped to 1 -> plain row sums 31, 33, 35
    expected = torch.tensor([[[[5.0 + 0.0 + 6.0, 5.0 + 1.0 + 7.0, 6.0 + 2.0 + 7.0],
                               [31.0, 33.0, 35.0]]]])
    torch.testing.assert_close(out, expected)
    ref = dynamic_snake_conv_reference(
        x.numpy(), offset.numpy(), weight.numpy(), None, kernel_size=3, morph=0, extend_scope=1.0
    )
    np.testing.assert_allclose(ref, expected.numpy(), atol=1e-12)


def test_sample_layout_is_dscnet_stacking() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 4, 5))
    offset = np.zeros((1, 6, 4, 5))
    s0 = dsconv_sample_reference(x, offset, kernel_size=3, morph=0)
    s1 = dsconv_sample_reference(x, offset, kernel_size=3, morph=1)
    assert s0.shape == (1, 2, 12, 5) and s1.shape == (1, 2, 4, 15)
    # morph 0, row i*K + k holds point k = column j + k - 1 (clamped)
    np.testing.assert_allclose(s0[0, :, 2 * 3 + 0, 3], x[0, :, 2, 2])
    np.testing.assert_allclose(s0[0, :, 2 * 3 + 2, 4], x[0, :, 2, 4])
    # morph 1, column j*K + k holds point k = row i + k - 1 (clamped)
    np.testing.assert_allclose(s1[0, :, 0, 3 * 3 + 0], x[0, :, 0, 3])
    np.testing.assert_allclose(s1[0, :, 2, 1 * 3 + 2], x[0, :, 3, 1])


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("morph", [0, 1])
def test_gradcheck_float64(morph: int) -> None:
    k = 3
    g = torch.Generator().manual_seed(11 + morph)
    x = torch.randn(1, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    offset = (torch.rand(1, 2 * k, 4, 5, generator=g, dtype=torch.float64) * 1.6 - 0.8)
    offset.requires_grad_()
    shape = (2, 2, k, 1) if morph == 0 else (2, 2, 1, k)
    weight = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)

    def fn(x_, off_, w_, b_):  # type: ignore[no-untyped-def]
        return dynamic_snake_conv(
            x_, off_, w_, b_, kernel_size=k, morph=morph, extend_scope=1.3
        )

    assert torch.autograd.gradcheck(fn, (x, offset, weight, bias))


def test_offset_conv_receives_gradient_through_module() -> None:
    torch.manual_seed(0)
    for morph in (0, 1):
        module = DSConv(in_channels=4, out_channels=8, kernel_size=5, morph=morph)
        x = torch.randn(2, 4, 9, 7)
        target = torch.randn(2, 8, 9, 7)
        (module(x) * target).sum().backward()
        for name in ("offset_conv", "offset_norm", "collapse", "norm"):
            grad = getattr(module, name).weight.grad
            assert grad is not None and grad.abs().sum() > 0, name
