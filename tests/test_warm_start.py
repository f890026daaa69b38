"""Warm starts: donor tensors copied, new modules start as exact identities.

Oracles: the identity itself (a new module must return its input), math.erf for GELU, and
the donor model (a different, published network) for the stacked-input equivalence.
"""

from __future__ import annotations

import math

import pytest
import torch

from edgesr.models import create_model
from edgesr.warm_start import gelu_inverse, warm_start


def test_gelu_inverse_hits_its_target() -> None:
    z = gelu_inverse(1.0)
    assert z * 0.5 * (1 + math.erf(z / math.sqrt(2))) == pytest.approx(1.0, abs=1e-9)


@pytest.fixture(scope="module")
def lmfn_warm() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    donor = create_model("lkdn_x4").state_dict()
    model = create_model("lmfn_x4")
    warm_start(model, "lmfn", donor)
    return model, donor


def test_lmfn_new_cells_are_identities(lmfn_warm) -> None:
    model, _ = lmfn_warm
    x = torch.rand(1, 56, 24, 20) + 0.1
    kinds = []
    for block in model.blocks:
        kind = type(block.cell).__name__
        kinds.append(kind)
        if kind in ("MSM", "IFM"):
            with torch.no_grad():
                torch.testing.assert_close(block.cell(x), x, atol=1e-5, rtol=1e-5)
    assert kinds.count("MSM") + kinds.count("IFM") == 5


def test_lmfn_copies_every_donor_tensor_of_the_same_name(lmfn_warm) -> None:
    model, donor = lmfn_warm
    own = model.state_dict()
    shared = [k for k in donor if k in own]
    assert len(shared) > 100
    for key in shared:
        assert torch.equal(own[key], donor[key]), key


def test_osffnet_new_modules_are_identities_and_the_stacked_input_matches_the_donor() -> None:
    donor_model = create_model("bsrn_x4")
    model = create_model("osffnet_x4")
    warm_start(model, "osffnet", donor_model.state_dict())
    x = torch.rand(1, 64, 20, 18) - 0.3
    with torch.no_grad():
        for drf in model.drf:
            torch.testing.assert_close(drf(x), x, atol=1e-5, rtol=1e-4)
        pixels = x.permute(0, 2, 3, 1)
        block = model.blocks[0]
        torch.testing.assert_close(block.mlp(block.mlp_norm(pixels)), torch.zeros_like(pixels))
        assert torch.count_nonzero(model.sfgc_weights) == 0
        lr = torch.rand(1, 3, 20, 18)
        torch.testing.assert_close(model.shallow(lr.repeat(1, 8, 1, 1)), donor_model.shallow(lr.repeat(1, 4, 1, 1)),
                                   atol=1e-5, rtol=1e-5)
        assert torch.equal(model.blocks[3].refine[1].conv.pw.weight, donor_model.blocks[3].refine[1].pw.weight)
