"""Video in and out through PyAV (FFmpeg's libraries in a wheel): decode -> SR -> encode.

Streaming, frame by frame: no frames on disk, and memory bounded by the decoder's and
encoder's few buffered frames (Real-ESRGAN's video path writes every frame as a PNG first).
Audio and subtitle streams are copied packet for packet (no re-encoding), and every video
frame keeps its input timestamp and time base, so the frame rate (variable too) and the sync
with the audio stay as they were. The output is written under a hidden temporary name and
committed by :func:`edgesr.fileio.write_atomically`: an interrupt or an error leaves no
partial file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesr.errors import ConfigError, ImageError
from edgesr.fileio import write_atomically

#: Extensions edgesr-run treats as video, and the container each one is written as.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
              ".webm": "webm", ".avi": "avi"}
VIDEO_EXTENSIONS = tuple(CONTAINERS)
#: Encoders whose usual pixel format is 4:2:0 (even sizes only); others keep RGB when they can.
_YUV420_CODECS = ("libx264", "libx265", "libvpx-vp9", "libvpx", "libaom-av1", "mpeg4", "h264")
_RGB_FORMATS = ("rgb24", "bgr0", "gbrp")

#: ``sr_frame(rgb)``: H×W×3 uint8 RGB -> the upscaled H'×W'×3 uint8 RGB.
FrameUpscaler = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, kw_only=True)
class VideoInfo:
    """What the input holds: the video stream's size, frame count (0 = unknown), rate."""

    width: int
    height: int
    frames: int
    rate: float


def import_av() -> Any:
    try:
        return importlib.import_module("av")
    except ImportError:
        raise ConfigError(
            "video input needs PyAV, which is not installed here: pip install -e '.[video]' "
            "(from the edgesr checkout)"
        ) from None


def _open_input(av: Any, path: Path) -> Any:
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise ImageError(f"cannot read video {path}: {exc.strerror or exc}; is it a complete video file?") from None
    if not container.streams.video:
        container.close()
        raise ImageError(f"{path} has no video stream; pass a video (or an image)")
    return container


def probe_video(path: Path) -> VideoInfo:
    """The input's video stream, from its headers; one-line errors for what cannot be read."""
    av = import_av()
    with _open_input(av, path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 0
        if not stream.codec_context.width or not stream.codec_context.height:
            raise ImageError(f"cannot read video {path}: its video stream has no frame size")
        return VideoInfo(width=stream.codec_context.width, height=stream.codec_context.height,
                         frames=int(stream.frames or 0), rate=float(rate))


def default_codec(path: Path) -> str:
    return "libvpx-vp9" if path.suffix.lower() == ".webm" else "libx264"


def _pixel_format(av: Any, codec: str) -> str:
    try:
        formats = [f.name for f in (av.Codec(codec, "w").video_formats or ())]
    except (av.FFmpegError, ValueError):  # PyAV raises either for an unknown name
        raise ConfigError(f"--codec {codec}: no such video encoder in this PyAV build; try libx264, libx265 or ffv1") from None
    if codec in _YUV420_CODECS and "yuv420p" in formats:
        return "yuv420p"  # what players expect from these codecs
    return next((f for f in _RGB_FORMATS if f in formats), formats[0] if formats else "yuv420p")


def _encoder_options(codec: str, crf: int | None) -> dict[str, str]:
    if crf is None:
        return {}
    if codec.startswith(("libx264", "libx265", "libvpx", "libaom")):
        # VP9/AV1 need a zero bitrate for crf to mean constant quality
        return {"crf": str(crf)} | ({"b": "0"} if codec.startswith(("libvpx", "libaom")) else {})
    raise ConfigError(f"--crf applies to libx264/libx265/libvpx-vp9/libaom-av1, not --codec {codec}; drop --crf")


def check_encoder(codec: str, crf: int | None) -> None:
    """Refuse an unknown --codec or a --crf it does not take, before any model is loaded."""
    av = import_av()
    _pixel_format(av, codec)
    _encoder_options(codec, crf)


def _add_video_stream(av: Any, out: Any, src_stream: Any, *, codec: str, crf: int | None,
                      size: tuple[int, int]) -> Any:
    out_h, out_w = size
    pix_fmt = _pixel_format(av, codec)
    if pix_fmt.startswith(("yuv420", "yuv422", "nv12")) and (out_w % 2 or out_h % 2):
        raise ImageError(
            f"the output would be {out_w}x{out_h}, an odd size that {codec} ({pix_fmt}) cannot "
            "encode; pick -s so both sides are even, or --codec ffv1 / libx264rgb"
        )
    rate = src_stream.average_rate or src_stream.guessed_rate
    stream = out.add_stream(codec, rate=rate, options=_encoder_options(codec, crf))
    stream.width, stream.height, stream.pix_fmt = out_w, out_h, pix_fmt
    stream.time_base = src_stream.time_base  # timestamps are copied, not re-timed
    return stream


def _copied_streams(out: Any, container: Any) -> dict[Any, Any]:
    """Audio and subtitle streams, added to ``out`` as copies (no re-encoding)."""
    copies = {}
    for stream in (*container.streams.audio, *container.streams.subtitles):
        try:
            copies[stream] = out.add_stream_from_template(stream)
        except (ValueError, NotImplementedError) as exc:
            raise ImageError(
                f"the output container cannot hold the input's {stream.type} stream "
                f"({stream.codec_context.name}): {exc}; write a .mkv instead"
            ) from None
    return copies


def _frames_out(av: Any, frame: Any, sr_frame: FrameUpscaler) -> Any:
    rgb = frame.to_ndarray(format="rgb24")
    out = av.VideoFrame.from_ndarray(np.ascontiguousarray(sr_frame(rgb)), format="rgb24")
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


def _stream_through(av: Any, container: Any, out: Any, video_out: Any, copies: dict[Any, Any],
                    sr_frame: FrameUpscaler, on_frame: Callable[[], None]) -> Iterator[None]:
    src_video = container.streams.video[0]
    for packet in container.demux(src_video, *copies):
        if packet.stream is src_video:
            for frame in packet.decode():
                out.mux(video_out.encode(_frames_out(av, frame, sr_frame)))
                on_frame()
                yield
        elif packet.dts is not None:  # packets without dts only flush the demuxer
            packet.stream = copies[packet.stream]
            out.mux(packet)
    out.mux(video_out.encode())  # flush the encoder's buffered frames


def upscale_video(
    src: Path,
    dst: Path,
    *,
    sr_frame: FrameUpscaler,
    out_size: tuple[int, int],
    codec: str | None = None,
    crf: int | None = None,
    overwrite: bool = False,
    on_frame: Callable[[], None] = lambda: None,
) -> int:
    """Upscale every frame of ``src`` into ``dst`` (``out_size`` = (height, width)); returns
    the number of frames written. See the module notes."""
    av = import_av()
    container_format = CONTAINERS.get(dst.suffix.lower())
    if container_format is None:
        raise ConfigError(f"output {dst}: a video output needs one of {' '.join(VIDEO_EXTENSIONS)}")
    codec = codec or default_codec(dst)
    frames = 0

    def write(tmp: str) -> None:
        nonlocal frames
        with _open_input(av, src) as container, av.open(tmp, "w", format=container_format) as out:
            video_out = _add_video_stream(av, out, container.streams.video[0], codec=codec,
                                          crf=crf, size=out_size)
            copies = _copied_streams(out, container)
            for _ in _stream_through(av, container, out, video_out, copies, sr_frame, on_frame):
                frames += 1
        if frames == 0:  # raised inside the write, so nothing is committed
            raise ImageError(f"{src} has no decodable video frames; is the file complete?")

    try:
        write_atomically(dst, write, overwrite=overwrite)
    except av.FFmpegError as exc:
        raise ImageError(f"cannot upscale video {src}: {exc.strerror or exc}") from None
    return frames
