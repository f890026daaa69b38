"""``edgesr-serve``'s work: an open edgesr engine behind a real Triton Inference Server.

The server is the ``tritonserver`` bundled in ``nvidia-pytriton`` (the ``serve`` extra): PyTriton
starts it, and its Python backend hands each request to :class:`ImageUpscaler` in this process
(over a local IPC socket). One model, named after the edgesr model:

    input  ``image``     UINT8 [-1, -1, 3]   one RGB image, height x width x channels, any size
    output ``upscaled``  UINT8 [-1, -1, 3]   the image upscaled by the model's scale

Batching is off (``max_batch_size`` 0): one image per request, since Triton batches only
requests of equal shape and clients send images of any size; large images are tiled inside
(edgesr's tiling, the same plan as ``edgesr-run``). The pixels are ``edgesr-run``'s: the same
conversion to float (k / 255, as the image reader), the same tiling and the same rounding as
its image writer, so a response equals the PNG ``edgesr-run`` writes for that image, byte for
byte.

A bad request (a type or shape other than the config's, which Triton refuses itself; an
empty image; more pixels than the budget) gets an error response and the server goes on.
SIGTERM or SIGINT stops it (PyTriton stops tritonserver, which finishes requests in flight).

Never imports torch; ``pytriton`` is imported only when a server starts.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sysconfig
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgesr.errors import ConfigError, EdgeSRError
from edgesr.runtime.engines.protocol import Engine
from edgesr.runtime.image_write import quantize  # the writer's own rounding: bytes equal edgesr-run's
from edgesr.runtime.imageio import LoadedImage
from edgesr.runtime.tile_plan import DEFAULT_MEMORY_BUDGET_MB, MIB, plan_tiling
from edgesr.runtime.upscale import upscale_image

PROG = "edgesr-serve"
INPUT_NAME = "image"
OUTPUT_NAME = "upscaled"
#: Default pixel budget of one request: 16 MP in (a 4096x4096 photo) is 256 MP out at x4,
#: 768 MB of uint8 in the response; edgesr-run's 64 MP file limit would allow 3 GB responses.
DEFAULT_MAX_PIXELS = 16_000_000
LOCALHOST = "127.0.0.1"

logger = logging.getLogger(__name__)
_TRITON_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class BadRequest(EdgeSRError):
    """A request this server refuses (its message goes back to the client)."""


@dataclass(kw_only=True)
class ImageUpscaler:
    """uint8 H x W x 3 RGB in, uint8 (scale*H) x (scale*W) x 3 out, through ``engine``."""

    engine: Engine
    tile_px: int | None = None
    overlap_px: int | None = None
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_MB * MIB
    max_pixels: int = DEFAULT_MAX_PIXELS

    def check(self, image: np.ndarray) -> None:
        """BadRequest unless ``image`` is a non-empty uint8 H x W x 3 array within the budget.
        (Triton refuses other types and ranks first; a direct caller gets the same rules.)"""
        if image.dtype != np.uint8:
            raise BadRequest(f"{INPUT_NAME}: expected uint8 samples, got {image.dtype}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise BadRequest(f"{INPUT_NAME}: expected height x width x 3 (RGB), got shape {image.shape}")
        height, width = image.shape[:2]
        if height == 0 or width == 0:
            raise BadRequest(f"{INPUT_NAME}: the image is empty ({width}x{height})")
        if height * width > self.max_pixels:
            raise BadRequest(f"{INPUT_NAME}: {width}x{height} is {height * width:,} pixels, above "
                             f"this server's budget of {self.max_pixels:,} (edgesr-serve --max-pixels)")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        self.check(image)
        rgb = image.astype(np.float32) / np.float32(255.0)  # exact k/255, as edgesr's image reader
        loaded = LoadedImage(rgb=rgb, alpha=None, bit_depth=8, is_gray=False,
                             source_path=Path(f"<{INPUT_NAME}>"))
        plan = plan_tiling(height=loaded.height, width=loaded.width, spec=self.engine.spec,
                           tile_px=self.tile_px, overlap_px=self.overlap_px,
                           memory_budget_bytes=self.memory_budget_bytes,
                           limit_to_advice=getattr(self.engine, "tiles_limited_to_advice", True))
        sr, _, _ = upscale_image(loaded, self.engine, plan=plan)
        return quantize(sr, 8)


def infer_function(upscaler: ImageUpscaler) -> Callable[[Sequence[Any]], list[dict[str, np.ndarray]]]:
    """PyTriton's inference callable: one upscaled image per request. An exception becomes the
    error response of the call (Triton's default scheduler passes one request per call when
    batching is off, so a bad request fails alone)."""

    def infer(requests: Sequence[Any]) -> list[dict[str, np.ndarray]]:
        return [{OUTPUT_NAME: upscaler(np.asarray(request[INPUT_NAME]))} for request in requests]

    return infer


def triton_model_name(model_path: Path | None, model_name: str | None) -> str:
    """The served model's name: the ONNX file's stem (lkdn_x4) or the registered model's name,
    in the letters Triton allows."""
    raw = model_path.stem if model_path is not None else (model_name or "edgesr")
    return _TRITON_NAME.sub("_", raw) or "edgesr"


@dataclass(frozen=True, kw_only=True)
class Endpoints:
    """Where the server listens (every endpoint on ``host``)."""

    host: str = LOCALHOST
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002

    @property
    def http_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.http_port}"


def _pytriton() -> Any:
    try:
        import pytriton.triton
    except ImportError:
        raise ConfigError(f"{PROG} needs nvidia-pytriton: pip install -e '.[serve]' "
                          "(nvidia-pytriton is not installed here)") from None
    return pytriton


def check_serve_extra() -> None:
    """One-line ConfigError when nvidia-pytriton is missing (before a model is loaded)."""
    _pytriton()


def _stub_finds_this_python() -> None:
    """Put this interpreter's libpython first on LD_LIBRARY_PATH (inherited by tritonserver and
    its Python stub). Without it the stub loaded the system's libpython 3.11.2 beside this
    interpreter's 3.11.7 standard library and failed at startup (RLock._recursion_count)."""
    libdir = sysconfig.get_config_var("LIBDIR")
    paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    if libdir and (not paths or paths[0] != libdir):
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *paths])


def serve(upscaler: ImageUpscaler, *, model_name: str, endpoints: Endpoints,
          on_ready: Callable[[], None] | None = None, stop: threading.Event | None = None) -> None:
    """Serve ``upscaler`` as ``model_name`` until SIGTERM/SIGINT (or ``stop`` is set), then stop
    tritonserver. Signal handlers are installed only from the main thread."""
    _pytriton()
    from pytriton.model_config import ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    _stub_finds_this_python()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    config = TritonConfig(
        http_address=endpoints.host, http_port=endpoints.http_port,
        grpc_address=endpoints.host, grpc_port=endpoints.grpc_port,
        metrics_address=endpoints.host, metrics_port=endpoints.metrics_port,
        allow_sagemaker=False, allow_vertex_ai=False, exit_on_error=True,
        exit_timeout_secs=10,  # requests in flight finish within this on shutdown
    )
    image = (-1, -1, 3)
    with Triton(config=config) as triton:
        triton.bind(model_name=model_name, infer_func=infer_function(upscaler),
                    inputs=[Tensor(name=INPUT_NAME, dtype=np.uint8, shape=image)],
                    outputs=[Tensor(name=OUTPUT_NAME, dtype=np.uint8, shape=image)],
                    config=ModelConfig(batching=False), strict=True)
        if on_ready is not None:
            on_ready()
        while not stop.wait(timeout=1.0):
            if not triton.is_alive():
                raise EdgeSRError("tritonserver stopped unexpectedly (rerun with -v for its log)")
    logger.debug("%s stopped", model_name)
