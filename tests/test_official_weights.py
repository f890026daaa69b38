"""Official BSRN/LKDN checkpoints: the key maps, detection, conversion and the published rows.

Oracles: the renames below are written by hand from the authors' code (BSRN's
``basicsr/archs/bsrn_arch.py``, LKDN's ``basicsr/archs/lkdn_arch.py``); the PSNR/SSIM rows are
the published ones (BSRN: OSFFNet paper Table 1; LKDN: its CVPRW 2023 paper, Table 4, also in
the authors' README). Tests that need the checkpoints or Set5/Set14 skip where ``../shared``
is absent (its README explains where they come from).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgesr.errors import WeightsError
from edgesr.official_weights import KEY_MAPS, convert_official

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OFFICIAL = SHARED / "official-weights"
needs_shared = pytest.mark.skipif(not OFFICIAL.is_dir(), reason=f"{OFFICIAL} is absent (not a checkout beside shared/)")


@pytest.mark.parametrize(("family", "official", "ours"), [
    ("bsrn", "fea_conv.pw.weight", "shallow.pw.weight"),
    ("bsrn", "B1.c1_d.bias", "blocks.0.distill.0.bias"),
    ("bsrn", "B2.c3_r.dw.weight", "blocks.1.refine.2.dw.weight"),
    ("bsrn", "B8.c4.dw.bias", "blocks.7.distill_last.dw.bias"),
    ("bsrn", "B3.c5.weight", "blocks.2.fuse.weight"),
    ("bsrn", "B1.esa.conv1.weight", "blocks.0.esa.reduce.weight"),
    ("bsrn", "B1.esa.conv_f.bias", "blocks.0.esa.skip.bias"),
    ("bsrn", "B1.esa.conv2.pw.weight", "blocks.0.esa.down.pw.weight"),
    ("bsrn", "B1.esa.conv3_.dw.bias", "blocks.0.esa.conv3_.dw.bias"),
    ("bsrn", "B1.esa.conv4.weight", "blocks.0.esa.expand.weight"),
    ("bsrn", "B1.cca.conv_du.2.weight", "blocks.0.cca.excite.weight"),
    ("bsrn", "c1.weight", "fuse.weight"),
    ("bsrn", "c2.pw.weight", "fuse_conv.pw.weight"),
    ("bsrn", "upsampler.upsampleOneStep.0.bias", "upsampler.conv.bias"),
    ("lkdn", "B3.atten.depthwise_dilated.weight", "blocks.2.cell.dw_dilated.weight"),
    ("lkdn", "B1.atten.pointwise.bias", "blocks.0.cell.pw.bias"),
    ("lkdn", "B1.c5.weight", "blocks.0.reduce.weight"),
    ("lkdn", "B1.c6.bias", "blocks.0.expand.bias"),
    ("lkdn", "B1.pixel_norm.weight", "blocks.0.norm.weight"),
    ("lkdn", "upsampler.0.weight", "upsampler.conv.weight"),
])
def test_key_maps_rename_by_rule(family: str, official: str, ours: str) -> None:
    assert KEY_MAPS[family].rename(official) == ours


@pytest.mark.parametrize("key", ["B1.esa.conv9.weight", "head.weight", "B1.atten.pointwise.weight"])
def test_bsrn_map_leaves_foreign_keys_unmapped(key: str) -> None:
    assert KEY_MAPS["bsrn"].rename(key) is None


def test_a_state_dict_with_one_foreign_key_is_not_converted() -> None:
    import torch

    state = {"fea_conv.pw.weight": torch.zeros(64, 12, 1, 1), "upsampler.upsampleOneStep.0.weight": torch.zeros(48, 64, 3, 3),
             "mystery.weight": torch.zeros(1)}
    assert convert_official(state) is None


@needs_shared
@pytest.mark.parametrize(("path", "name"), [
    ("bsrn/net_g_BSRN_x2.pth", "bsrn_x2"), ("bsrn/net_g_BSRN_x3.pth", "bsrn_x3"),
    ("bsrn/net_g_BSRN_x4.pth", "bsrn_x4"), ("lkdn/LKDN_x2.pth", "lkdn_x2"),
    ("lkdn/LKDN_x3.pth", "lkdn_x3"), ("lkdn/LKDN_x4.pth", "lkdn_x4"),
])
def test_every_official_checkpoint_maps_completely_and_loads_strictly(path: str, name: str) -> None:
    from edgesr.models import create_model
    from edgesr.train.eval_models import detected_model_name
    from edgesr.weights_io import load_weights, read_state_dict

    state = read_state_dict(OFFICIAL / path)
    conversion = convert_official(state)
    assert conversion is not None and conversion.model_name == name
    assert len(conversion.renames) == len(state)
    load_weights(create_model(name), OFFICIAL / path)  # strict: names and shapes
    assert detected_model_name(str(OFFICIAL / path)) == name


def test_shipped_converted_weights_are_detected_by_their_shapes() -> None:
    from edgesr.train.eval_models import detected_model_name
    from edgesr.weights import shipped_weights

    assert detected_model_name(str(shipped_weights("lkdn_x3"))) == "lkdn_x3"


def test_unknown_layout_error_names_the_known_architectures(tmp_path: Path) -> None:
    import torch

    from edgesr.train.eval_models import detected_model_name

    path = tmp_path / "other.pth"
    torch.save({"params": {"head.weight": torch.zeros(3)}}, path)
    with pytest.raises(WeightsError, match="bsrn .*lkdn"):
        detected_model_name(str(path))


def _script(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@needs_shared
def test_weights_convert_prints_renames_and_never_replaces(tmp_path: Path) -> None:
    out = tmp_path / "bsrn_x3.safetensors"
    done = subprocess.run([_script("edgesr-weights"), "convert", str(OFFICIAL / "bsrn/net_g_BSRN_x3.pth"),
                           "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "B1.esa.conv2.pw.weight -> blocks.0.esa.down.pw.weight" in done.stdout
    again = subprocess.run([_script("edgesr-weights"), "convert", str(OFFICIAL / "bsrn/net_g_BSRN_x3.pth"),
                            "-o", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "exists" in again.stderr


def test_weights_list_names_every_model_with_its_status() -> None:
    from edgesr.models.registry import MODEL_TABLE

    done = subprocess.run([_script("edgesr-weights"), "list"], capture_output=True, text=True, check=True)
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert set(lines) == set(MODEL_TABLE)
    assert " shipped " in lines["lkdn_x4"] and "MIT" in lines["lkdn_x4"]
    assert " none " in lines["imdn_x3"]
