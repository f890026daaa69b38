"""Training: recipes, exact resume, loss falls, two-process DDP on gloo, evaluation."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from edgesr.errors import ConfigError
from edgesr.train.config import TrainConfig, load_config, packaged_recipes
from edgesr.train.loop_parts import ResumableSampler
from edgesr.train.trainer import Trainer
from edgesr.weights_io import read_state_dict
from oracles import psnr_y_oracle


@pytest.fixture(scope="module")
def corpus(photo_crops: Path) -> Path:
    return photo_crops


def _config(corpus: Path, out: Path, **changes) -> TrainConfig:
    base = dict(model="lkdn-tiny_x2", train_dir=str(corpus), out_dir=str(out), iterations=4,
                batch_size=4, lr_patch_px=12, lr=2e-3, val_every=1000, checkpoint_every=2,
                log_every=1, num_workers=0, cache_dir=str(out.parent / "cache"))
    return TrainConfig(**{**base, **changes})


def test_unknown_recipe_key_lists_the_valid_ones(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "osffnet_x4"\ntrain_dir = "x"\nlearning_rate = 1e-3\n')
    with pytest.raises(ConfigError, match="unknown keys learning_rate; valid keys: model, train_dir"):
        load_config(str(recipe))


@pytest.mark.parametrize("name", packaged_recipes())
def test_packaged_recipes_load(name: str) -> None:
    config = load_config(name)
    assert config.loss == "l1"


def test_every_train_flag_but_the_run_controls_overrides_a_recipe_field() -> None:
    # edgesr-train passes the flags named after TrainConfig fields to load_config; a flag named
    # otherwise would be silently ignored, so the only others are the run's own controls.
    from dataclasses import fields

    from edgesr.train.cli import build_parser

    flags = {a.dest for a in build_parser()._actions if a.dest != "help"}
    assert flags - {f.name for f in fields(TrainConfig)} == {"config", "time_limit", "restart", "verbose"}


def test_sampler_resumes_mid_epoch_and_shards() -> None:
    full = list(ResumableSampler(length=10, seed=3, rank=0, world_size=1))
    resumed = ResumableSampler(length=10, seed=3, rank=0, world_size=1)
    resumed.set_epoch(0, start=4)
    assert list(resumed) == full[4:]
    shards = [list(ResumableSampler(length=10, seed=3, rank=r, world_size=2)) for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == sorted(full)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(corpus: Path, tmp_path: Path) -> None:
    straight = Trainer(config=_config(corpus, tmp_path / "a", iterations=4)).train()
    Trainer(config=_config(corpus, tmp_path / "b", iterations=4)).train(stop_at=2)  # "interrupted"
    resumed_trainer = Trainer(config=_config(corpus, tmp_path / "b", iterations=4))
    assert resumed_trainer.iteration == 2
    resumed = resumed_trainer.train()
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_warmup_then_cosine_lr_by_hand() -> None:
    from edgesr.train.loop_parts import make_optimizer, make_scheduler

    config = TrainConfig(model="osffnet_x4", train_dir="x", lr=1e-3, lr_min=0.0, iterations=10,
                         warmup_iterations=4)
    optimizer = make_optimizer(config, [torch.nn.Parameter(torch.zeros(1))])
    scheduler = make_scheduler(config, optimizer)
    lrs = []
    for _ in range(11):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # step t: 1e-3 x min(1, (t+1)/4) x (1 + cos(pi t / 10)) / 2; cos(0.3 pi) = 0.587785
    assert lrs[0] == pytest.approx(2.5e-4)
    assert lrs[1] == pytest.approx(1e-3 * 0.5 * (1 + 0.951057) / 2, rel=1e-5)
    assert lrs[3] == pytest.approx(1e-3 * (1 + 0.587785) / 2, rel=1e-5)
    assert lrs[5] == pytest.approx(5e-4)
    assert lrs[10] == pytest.approx(0.0, abs=1e-12)


def test_resume_with_warmup_gives_the_same_weights(corpus: Path, tmp_path: Path) -> None:
    straight = Trainer(config=_config(corpus, tmp_path / "a", warmup_iterations=3)).train()
    Trainer(config=_config(corpus, tmp_path / "b", warmup_iterations=3)).train(stop_at=2)
    resumed = Trainer(config=_config(corpus, tmp_path / "b", warmup_iterations=3)).train()
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_resume_restores_iteration_and_ema(corpus: Path, tmp_path: Path) -> None:
    cfg = _config(corpus, tmp_path / "e", model="osffnet-tiny_x2", ema_decay=0.9, iterations=3,
                  optimizer="adam", lr_patch_px=16)
    first = Trainer(config=cfg)
    first.train(stop_at=2)
    again = Trainer(config=cfg)
    assert again.iteration == 2
    for (n, a), (_, b) in zip(first.ema.module.state_dict().items(), again.ema.module.state_dict().items()):
        assert torch.equal(a, b), n
    assert int(again.ema.n_averaged) == int(first.ema.n_averaged) == 2


def test_patch_below_the_model_minimum_is_refused(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="minimum input of 15 px"):
        Trainer(config=_config(corpus, tmp_path / "m", model="osffnet-tiny_x2", lr_patch_px=12))


def test_loss_falls_on_a_short_run(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "loss"
    Trainer(config=_config(corpus, out, iterations=40, lr=3e-3, batch_size=8, checkpoint_every=40)).train()
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]  # the first record lists the training files
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:4])


def test_validation_psnr_is_logged(corpus: Path, tmp_path: Path) -> None:
    from edgesr.data.degrade import lr_from_hr
    from edgesr.models import create_model
    from edgesr.weights_io import load_weights

    out = tmp_path / "val"
    Trainer(config=_config(corpus, out, iterations=2, val_dir=str(corpus), val_every=2)).train()
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    logged = [r["val_psnr_db"] for r in records if "val_psnr_db" in r]
    assert len(logged) == 1  # validated once, at iteration 2, with the weights then written
    # Oracle: the written weights upscale each photo's LR (the MATLAB bicubic degradation,
    # checked against Octave in test_degrade.py); scikit-image scores PSNR-Y, border 2.
    model = load_weights(create_model("lkdn-tiny_x2"), out / "weights.safetensors").eval()
    scores, blank = [], []
    for path in sorted(corpus.glob("*.png")):
        hr, lr = lr_from_hr(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), scale=2)
        with torch.no_grad():
            sr = model(torch.from_numpy(lr / np.float32(255)).permute(2, 0, 1)[None]).clamp(0, 1)
        scores.append(psnr_y_oracle(sr[0].permute(1, 2, 0).numpy(), hr, border=2))
        blank.append(psnr_y_oracle(np.zeros(hr.shape), hr, border=2))
    assert logged[0] == pytest.approx(np.mean(scores), abs=1e-6)
    assert np.mean(blank) < 10 < logged[0]  # a black output scores ~7 dB: the value is no floor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_torchrun_on_gloo_matches_one_process(corpus: Path, tmp_path: Path) -> None:
    # LKDN has no BatchNorm, so 2 processes x 2 samples == 1 process x 4 samples (DDP averages).
    args = ["--config", "osffnet_x4", "--model", "lkdn-tiny_x2", "--train-dir", str(corpus),
            "--iterations", "3", "--batch-size", "4", "--lr-patch-px", "12", "--num-workers", "0",
            "--checkpoint-every", "3", "--log-every", "1", "--lr", "1e-3"]
    env = {**os.environ, "EDGESR_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(_free_port()), "-m", "edgesr.train.cli", *args, "--out-dir", str(tmp_path / "ddp")],
        capture_output=True, text=True, env=env, timeout=300)
    # A rank's one-line error first: torchrun's own traceback fills the tail of stderr.
    errors = [line for line in ddp.stderr.splitlines() if line.startswith("edgesr-train: error:")]
    assert ddp.returncode == 0, "\n".join(errors) or ddp.stderr[-2000:]
    single = subprocess.run([sys.executable, "-m", "edgesr.train.cli", *args, "--out-dir", str(tmp_path / "one")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    a = read_state_dict(tmp_path / "ddp" / "weights.safetensors")
    b = read_state_dict(tmp_path / "one" / "weights.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4)


def test_eval_reports_model_and_bicubic(corpus: Path, tmp_path: Path) -> None:
    from edgesr.models import create_model
    from edgesr.train.evaluate import evaluate, load_pairs, mean_scores, scores_markdown

    torch.manual_seed(0)
    model = create_model("osffnet-tiny_x2").eval()
    pairs = load_pairs(corpus, scale=2)
    scores = evaluate(model, pairs, scale=2, method="tiny")
    means = mean_scores(scores)
    assert set(means) == {"tiny", "bicubic"} and means["bicubic"][0] > 25
    # the model's row: each image's SR scored by scikit-image (tests/oracles.py), then the mean
    expected = []
    for pair in pairs:
        with torch.no_grad():
            sr = model(torch.from_numpy(pair.lr / np.float32(255)).permute(2, 0, 1)[None]).clamp(0, 1)
        expected.append(psnr_y_oracle(sr[0].permute(1, 2, 0).numpy(), pair.hr, border=2))
    assert means["tiny"][0] == pytest.approx(np.mean(expected), abs=1e-6)
    assert means["tiny"][0] != pytest.approx(means["bicubic"][0], abs=0.1)  # not the bicubic row again
    assert "| **mean** |" in scores_markdown(scores)


def test_init_from_starts_a_later_stage_from_earlier_weights(corpus: Path, tmp_path: Path) -> None:
    first = Trainer(config=_config(corpus, tmp_path / "s1", iterations=2)).train()
    second = Trainer(config=_config(corpus, tmp_path / "s2", iterations=1,
                                    init_from=str(tmp_path / "s1" / "weights.safetensors")))
    for (n, a), (_, b) in zip(first.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(a, b), n
    with pytest.raises(ConfigError, match="give one of"):
        _config(corpus, tmp_path / "x", init_from="a", finetune_from="b")


def test_saved_weights_get_the_umask_mode_not_mkstemps_0600(tmp_path: Path) -> None:
    from edgesr.models import create_model
    from edgesr.weights_io import save_weights

    old = os.umask(0o022)
    try:
        path = save_weights(create_model("osffnet-tiny_x2"), tmp_path / "w.safetensors")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_eval_cli_refuses_a_report_in_a_missing_folder_before_evaluating(corpus: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from edgesr.train.eval_cli import main

    code = main(["--model", "osffnet_x4", "--data", str(corpus), "--csv", str(tmp_path / "no" / "x.csv")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_validation_reads_a_benchmark_layout_like_edgesr_eval(corpus: Path, tmp_path: Path) -> None:
    # Set5-style folder: HR/ plus LR_bicubic/X2/*x2.png; the LR images are not validation HR.
    import shutil

    import cv2

    from edgesr.data.degrade import lr_from_hr

    bench = tmp_path / "Set"
    (bench / "HR").mkdir(parents=True)
    (bench / "LR_bicubic" / "X2").mkdir(parents=True)
    for photo in sorted(corpus.glob("*.png")):
        shutil.copy(photo, bench / "HR" / photo.name)
        _, lr = lr_from_hr(cv2.imread(str(photo)), scale=2)
        cv2.imwrite(str(bench / "LR_bicubic" / "X2" / f"{photo.stem}x2.png"), lr)
    trainer = Trainer(config=_config(corpus, tmp_path / "v", val_dir=str(bench)))
    assert sorted(p.name for p in trainer.val) == sorted(p.stem for p in corpus.glob("*.png"))
