"""Distillation from a donor (edgesr.train.distill): which blocks, the captured features, the
block stage closing the gap to the donor, the loss, and the Trainer's stages and resume."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch
import torch.nn.functional as F

from edgesr.errors import ConfigError
from edgesr.models import create_model
from edgesr.models.blocks import stack_input
from edgesr.train.config import TrainConfig
from edgesr.train.distill import (
    distill_blocks,
    distillation_loss,
    distilled_block_indices,
    block_features,
    feature_loss,
    load_donor,
    reseat_donor_layers,
)
from edgesr.train.trainer import Trainer
from edgesr.warm_start import warm_start
from edgesr.weights import shipped_weights
from edgesr.weights_io import in_edgesr_layout, load_weights, read_state_dict

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def photos(photo_crops: Path) -> Path:
    return photo_crops


def _photo_batch(size: int = 24) -> torch.Tensor:
    from skimage import data

    crops = [getattr(data, n)()[100:100 + size, 100:100 + size] for n in ("astronaut", "coffee")]
    return torch.stack([torch.from_numpy(c.copy()).permute(2, 0, 1).float() / 255 for c in crops])


def test_distilled_blocks_follow_the_papers_cell_pattern() -> None:
    # LMFN: LKA, MSM, IFM, LKA, MSM, IFM, LKA, MSM (DESIGN section 3): the LKA blocks are LKDN's own.
    assert distilled_block_indices(create_model("lmfn_x4")) == [1, 2, 4, 5, 7]
    # OSFFNet: every AEFD differs from BSRN's ESDB (eq. 7).
    assert distilled_block_indices(create_model("osffnet_x4")) == list(range(8))


def test_captured_features_are_the_donors_block_chain() -> None:
    donor = load_donor("bsrn_x4", student="osffnet_x4", device=CPU)
    lr = _photo_batch()
    features = block_features(donor, lr)
    with torch.no_grad():  # the chain written out by hand: shallow conv, then block after block
        feature = donor.shallow(stack_input(lr, 4))
        for k, block in enumerate(donor.blocks):
            assert torch.equal(features[k][0], feature)
            feature = block(feature)
            assert torch.equal(features[k][1], feature)
    assert len(features) == 8


def test_donor_must_be_the_students_family_and_scale() -> None:
    with pytest.raises(ConfigError, match="osffnet_x4's donor is bsrn_x4"):
        load_donor("lkdn_x4", student="osffnet_x4", device=CPU)
    with pytest.raises(ConfigError, match="osffnet_x4's donor is bsrn_x4"):
        load_donor("bsrn_x2", student="osffnet_x4", device=CPU)


def test_block_stage_brings_every_aefd_towards_its_bsrn_block() -> None:
    torch.manual_seed(0)
    student = create_model("osffnet_x4", eval_mode=False)
    warm_start(student, "osffnet", in_edgesr_layout(read_state_dict(shipped_weights("bsrn_x4"))))
    donor = load_donor("bsrn_x4", student="osffnet_x4", device=CPU)
    probe = _photo_batch(32)

    def block_errors() -> list[float]:
        features = block_features(donor, probe)
        with torch.no_grad():
            return [float(F.l1_loss(student.blocks[k].eval()(i), o)) for k, (i, o) in enumerate(features)]

    before = block_errors()
    batches = iter([_photo_batch(24)] * 30)
    distill_blocks(student, donor, batches, steps=30, lr=5e-4, device=CPU)
    after = block_errors()
    assert sum(after) < 0.5 * sum(before), (before, after)
    # BatchNorm stayed frozen: its running statistics are still the initial identity.
    assert all(torch.equal(b.norm.running_mean, torch.zeros(64)) for b in student.blocks)


def test_distillation_loss_is_l1_to_hr_plus_weighted_l1_to_the_donor() -> None:
    sr = torch.tensor([[[[0.5, 1.0]]]])
    hr = torch.tensor([[[[0.0, 1.0]]]])  # |0.5| + 0 -> mean 0.25
    donor = torch.tensor([[[[0.5, 0.0]]]])  # 0 + |1.0| -> mean 0.5
    assert float(distillation_loss(sr, hr, donor, weight=2.0)) == pytest.approx(0.25 + 2 * 0.5)
    assert float(distillation_loss(sr, hr, None, weight=2.0)) == pytest.approx(0.25)
    # hr_weight 0: pure distillation, only the donor term (0.5 by hand) is left
    assert float(distillation_loss(sr, hr, donor, weight=1.0, hr_weight=0.0)) == pytest.approx(0.5)


def test_feature_loss_is_the_mean_over_blocks_of_the_output_l1() -> None:
    def blocks(*outputs: list[float]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.zeros(1), torch.tensor(o)) for o in outputs]

    # block 0: |1 - 0| and |1 - 0| -> 1; block 1: |0.5 - 0| and |0 - 2| -> 1.25; mean 1.125
    student = blocks([1.0, 1.0], [0.5, 0.0])
    donor = blocks([0.0, 0.0], [0.0, 2.0])
    assert float(feature_loss(student, donor)) == pytest.approx(1.125)
    with pytest.raises(ConfigError, match="blocks of the donor's number and widths"):
        feature_loss(student, donor[:1])


def test_end_to_end_loss_adds_the_weighted_block_l1_to_the_donor(photos: Path, tmp_path: Path) -> None:
    trainer = Trainer(config=_config(photos, tmp_path / "run", block_iterations=0, feature_weight=2.0))
    lr = _photo_batch()
    hr = torch.zeros(lr.shape[0], 3, lr.shape[2] * 4, lr.shape[3] * 4)
    with torch.no_grad():
        with_features = float(trainer._loss(lr, hr))
        trainer.config = trainer.config.replace(feature_weight=0.0)
        without = float(trainer._loss(lr, hr))
        # Both block chains written out by hand: shallow conv, then block after block.
        student, donor = trainer.model, trainer.donor
        own, theirs = student.shallow(stack_input(lr, 4)), donor.shallow(stack_input(lr, 4))
        by_hand = []
        for own_block, donor_block in zip(student.blocks, donor.blocks):
            own, theirs = own_block(own), donor_block(theirs)
            by_hand.append(float((own - theirs).abs().mean()))
    assert with_features - without == pytest.approx(2.0 * sum(by_hand) / len(by_hand), rel=1e-4)
    assert sum(by_hand) > 0  # the warm start's MSM/IFM blocks are not LKDN's


def test_reseating_puts_back_the_donors_tensors_outside_the_distilled_blocks() -> None:
    student = create_model("lmfn_x4")
    load_weights(student, shipped_weights("lmfn_x4"))
    trained = {name: tensor.clone() for name, tensor in student.state_dict().items()}
    donor = in_edgesr_layout(read_state_dict(shipped_weights("lkdn_x4")))
    reseat_donor_layers(student, "lmfn", donor)
    after = student.state_dict()
    distilled = tuple(f"blocks.{k}." for k in (1, 2, 4, 5, 7))  # LMFN's MSM and IFM blocks
    for name, tensor in after.items():
        expected = trained[name] if name.startswith(distilled) else donor[name]
        assert torch.equal(tensor, expected), name
    # the shipped weights did move the shared layers: reseating changed something
    assert any(not torch.equal(after[n], trained[n]) for n in after if not n.startswith(distilled))
    with pytest.raises(ConfigError, match="reseat_donor_layers needs init_from"):
        TrainConfig(model="lmfn_x4", train_dir="x", distill_from="lkdn_x4", reseat_donor_layers=True)


def test_recipe_keys_are_checked() -> None:
    with pytest.raises(ConfigError, match="block_iterations needs distill_from"):
        TrainConfig(model="osffnet_x4", train_dir="x", block_iterations=5)
    with pytest.raises(ConfigError, match="name different donors"):
        TrainConfig(model="osffnet_x4", train_dir="x", distill_from="bsrn_x4", warm_start_from="x.safetensors")
    with pytest.raises(ConfigError, match="hr_weight = 0 leaves no loss"):
        TrainConfig(model="osffnet_x4", train_dir="x", hr_weight=0.0)
    with pytest.raises(ConfigError, match="distill_weight"):
        TrainConfig(model="osffnet_x4", train_dir="x", distill_from="bsrn_x4", distill_weight=-1.0)
    with pytest.raises(ConfigError, match="feature_weight needs distill_from"):
        TrainConfig(model="osffnet_x4", train_dir="x", feature_weight=1.0)
    with pytest.raises(ConfigError, match="feature_weight"):
        TrainConfig(model="osffnet_x4", train_dir="x", distill_from="bsrn_x4", feature_weight=-1.0)


def _config(photos: Path, out: Path, **changes) -> TrainConfig:
    base = dict(model="lmfn_x4", train_dir=str(photos), val_dir=str(photos), out_dir=str(out),
                distill_from="lkdn_x4", block_iterations=2, iterations=2, batch_size=2, lr_patch_px=12,
                lr=1e-4, val_every=100, checkpoint_every=100, log_every=1, num_workers=0,
                cache_dir=str(out.parent / "cache"))
    return TrainConfig(**{**base, **changes})


def _stages(out: Path) -> list[str]:
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [line.get("stage", "end-to-end") for line in lines]


def test_trainer_runs_the_block_stage_once_then_end_to_end(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    trainer = Trainer(config=_config(photos, out))
    trainer.train()
    assert (out / "block_stage.safetensors").is_file()
    assert trainer.block_stage_val_psnr_db is not None and trainer.block_stage_val_psnr_db > 20
    stages = _stages(out)
    assert stages.count("block") == 3  # two block steps and the validation after them
    assert stages[-1] == "end-to-end"
    # Resumed with more iterations: the block stage is not repeated, its score is kept.
    resumed = Trainer(config=_config(photos, out, iterations=3))
    resumed.train()
    assert _stages(out).count("block") == 3
    assert resumed.block_stage_val_psnr_db == trainer.block_stage_val_psnr_db


def test_deadline_stops_with_a_checkpoint(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    trainer = Trainer(config=_config(photos, out, block_iterations=0, distill_from=None,
                                     model="lkdn-tiny_x4", iterations=50))
    trainer.train(deadline=0.0)  # already past: one step, then a checkpoint
    assert trainer.iteration == 1
    assert (out / "checkpoints" / "iter_0000001").is_dir()


def test_plasma_corpus_takes_the_listed_photographs_with_their_authors(tmp_path: Path) -> None:
    import numpy as np

    from edgesr.data.photos import PLASMA_PHOTOS, PLASMA_SIZE, build_photo_corpus
    from edgesr.errors import DataError

    root = tmp_path / "unpacked"
    for k, name in enumerate(PLASMA_PHOTOS):
        images = root / "usr/share/wallpapers" / name / "contents/images"
        images.mkdir(parents=True)
        (images.parent.parent / "metadata.json").write_text(json.dumps(
            {"KPlugin": {"Authors": [{"Name": f"Author {k}"}], "License": "LGPLv3"}}))
        cv2.imwrite(str(images / PLASMA_SIZE), np.full((40, 64, 3), 10 * k, np.uint8))
    files = build_photo_corpus(tmp_path / "corpus", plasma=root)
    plasma = {f.path.name: f for f in files if f.path.name.startswith("plasma-")}
    assert sorted(plasma) == sorted(f"plasma-{n}.png" for n in PLASMA_PHOTOS)
    assert plasma["plasma-Kite.png"].holders == f"Author {PLASMA_PHOTOS.index('Kite')}"
    assert plasma["plasma-FallenLeaf.png"].split == "val"
    assert cv2.imread(str(plasma["plasma-Kite.png"].path)).shape == (20, 32, 3)  # downscaled x2
    (root / "usr/share/wallpapers/Grey/contents/images" / PLASMA_SIZE).unlink()
    with pytest.raises(DataError, match="lacks usr/share/wallpapers/Grey"):
        build_photo_corpus(tmp_path / "corpus2", plasma=root)


def test_campaign_trains_each_model_within_its_share_and_copies_the_best(photos: Path, tmp_path: Path) -> None:
    from edgesr.train.campaign_cli import main
    from edgesr.weights_io import load_weights

    out = tmp_path / "campaign"
    flags = {"--out": str(out), "--minutes": "5", "--train-dir": str(photos), "--val-dir": str(photos),
             "--models": "osffnet_x4", "--batch-size": "2", "--lr-patch-px": "16", "--iterations": "1",
             "--block-iterations": "1", "--feature-weight": "1", "--hr-weight": "0"}

    def campaign_args(**changes: str) -> list[str]:
        return [x for flag, value in {**flags, **changes}.items() for x in (flag, value)]

    assert main(campaign_args()) == 0
    assert (out / "osffnet_x4" / "block_stage.safetensors").is_file()
    load_weights(create_model("osffnet_x4"), out / "osffnet_x4.safetensors")  # strict: a whole model
    assert main(campaign_args(**{"--minutes": "0"})) == 2  # zero minutes: refused in one line
    # the overrides reach the recipe, whose checks refuse them
    assert main(campaign_args(**{"--hr-weight": "-1"})) == 2
    assert main(campaign_args(**{"--feature-weight": "-1"})) == 2
