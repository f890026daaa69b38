"""edgesr-run on video through PyAV, on a clip generated here (photo frames + a PCM audio
stream). Oracles: edgesr-run on each decoded input frame saved as a PNG (a folder run), the
input's own audio samples and timestamps, and sizes by hand."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from run_cli_util import assert_refused, models_fixture, read_raw, run_cli  # noqa: F401 (fixtures)

av = pytest.importorskip("av")

TOY_SCALE = 2
FRAMES, H, W = 4, 24, 32
RATE = Fraction(12, 1)


def _photo_frames() -> list[np.ndarray]:
    photo = skimage.data.astronaut()
    return [np.ascontiguousarray(photo[40 + 30 * i : 40 + 30 * i + H, 180 : 180 + W]) for i in range(FRAMES)]


def make_clip(path: Path, *, width: int = W, height: int = H, audio: bool = True, video: bool = True) -> None:
    """FFV1 (lossless RGB) frames at 12 fps and one second of 8 kHz 16-bit PCM, in Matroska."""
    with av.open(str(path), "w") as out:  # every stream is added before the first packet
        if video:
            stream = out.add_stream("ffv1", rate=RATE)
            stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        if audio:
            sound = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        if video:
            for rgb in _photo_frames():
                frame = av.VideoFrame.from_ndarray(cv2.resize(rgb, (width, height)), format="rgb24")
                out.mux(stream.encode(frame))
            out.mux(stream.encode())
        if audio:
            samples = (np.sin(np.arange(8000) / 7.0) * 12000).astype(np.int16)
            for start in range(0, 8000, 1000):
                frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1000], format="s16", layout="mono")
                frame.sample_rate, frame.pts = 8000, start
                out.mux(sound.encode(frame))
            out.mux(sound.encode())


def _decoded(path: Path) -> tuple[list[np.ndarray], list[int], Fraction, np.ndarray | None]:
    """RGB frames, their pts, the video time base, and all audio samples (None: no audio)."""
    with av.open(str(path)) as container:
        frames, pts = [], []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            pts.append(frame.pts)
        time_base = container.streams.video[0].time_base
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return frames, pts, time_base, None
        audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    return frames, pts, time_base, audio


def test_lossless_video_frames_equal_edgesr_run_on_each_frame_and_audio_survives(models, tmp_path: Path) -> None:
    clip, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    make_clip(clip)
    result = run_cli(clip, "-o", out, "--model", models["sr"], "--codec", "ffv1")
    assert result.returncode == 0, result.stderr
    frames_in, pts_in, tb_in, audio_in = _decoded(clip)
    frames_out, pts_out, tb_out, audio_out = _decoded(out)
    assert len(frames_in) == len(frames_out) == FRAMES
    assert pts_out == pts_in and tb_out == tb_in  # timestamps (so the frame rate) kept
    assert audio_in is not None and audio_out is not None and np.array_equal(audio_out, audio_in)
    # the oracle: edgesr-run's image path on every decoded input frame (one folder run)
    (tmp_path / "frames").mkdir()
    for i, rgb in enumerate(frames_in):
        assert cv2.imwrite(str(tmp_path / "frames" / f"{i}.png"), rgb[:, :, ::-1])
    images = run_cli(tmp_path / "frames", "-o", tmp_path / "sr", "--model", models["sr"])
    assert images.returncode == 0, images.stderr
    for i, rgb in enumerate(frames_out):
        assert rgb.shape == (H * TOY_SCALE, W * TOY_SCALE, 3)
        assert np.array_equal(rgb, read_raw(tmp_path / "sr" / f"{i}.png")[:, :, ::-1]), i


def test_default_codec_outscale_and_default_name(models, tmp_path: Path) -> None:
    make_clip(tmp_path / "clip.mkv")
    result = run_cli("-i", "clip.mkv", "--model", models["sr"], "-s", 3, "--crf", 20, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frames, _, _, audio = _decoded(tmp_path / "results" / "clip_out.mkv")
    assert len(frames) == FRAMES and frames[0].shape == (3 * H, 3 * W, 3)  # 72x96
    assert audio is not None
    with av.open(str(tmp_path / "results" / "clip_out.mkv")) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_bad_videos_are_one_line_and_write_nothing(models, tmp_path: Path) -> None:
    make_clip(tmp_path / "good.mkv", width=30, height=22)
    make_clip(tmp_path / "audio_only.mkv", video=False)
    (tmp_path / "cut.mkv").write_bytes((tmp_path / "good.mkv").read_bytes()[:200])
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "out.mp4"
    assert_refused(run_cli(tmp_path / "audio_only.mkv", "-o", out, "--model", models["sr"]), "no video stream")
    assert_refused(run_cli(tmp_path / "cut.mkv", "-o", out, "--model", models["sr"]), "cut.mkv")
    # 30x22 at -s 1.5 is 45x33: odd, which 4:2:0 H.264 cannot hold
    assert_refused(run_cli(tmp_path / "good.mkv", "-o", out, "--model", models["sr"], "-s", 1.5), "45x33", "odd")
    assert_refused(run_cli(tmp_path / "good.mkv", "-o", tmp_path / "o.png", "--model", models["sr"]), "video output")
    assert_refused(run_cli(tmp_path / "good.mkv", "-o", out, "--model", models["sr"], "--codec", "nosuch"), "nosuch")
    # the budget bounds one frame's output: 320x240 at x2 is 640x480x3 float32 = 3,686,400 B,
    # 4 MB rounded up, more than --max-output-mb 3 (by hand)
    make_clip(tmp_path / "big.mkv", width=320, height=240, audio=False)
    before.append("big.mkv")
    assert_refused(run_cli(tmp_path / "big.mkv", "-o", out, "--model", models["sr"], "--max-output-mb", 3),
                   "640x480", "4 MB", "--max-output-mb 4")
    assert run_cli(tmp_path / "big.mkv", "-o", out, "--model", models["sr"], "--max-output-mb", 4).returncode == 0
    out.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)


def test_an_interrupt_leaves_no_output_and_no_temporary_file(tmp_path: Path) -> None:
    from edgesr.runtime.video import upscale_video

    make_clip(tmp_path / "in.mkv")
    calls = []

    def sr_then_interrupt(rgb: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)

    with pytest.raises(KeyboardInterrupt):
        upscale_video(tmp_path / "in.mkv", tmp_path / "out.mkv", sr_frame=sr_then_interrupt,
                      out_size=(2 * H, 2 * W), codec="ffv1")
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]
