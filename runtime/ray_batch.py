"""Folder mode (``edgesr-run IN_DIR -o OUT_DIR``) on a Ray cluster, through Ray Data.

    edgesr-run IN_DIR -o OUT_DIR --ray [ADDRESS] [--ray-actors N] [--ray-gpus G] [edgesr-run's flags]
    edgesr-batch IN_DIR -o OUT_DIR [--model PATH.onnx] [--engine ort|openvino|trt]
                 [--address ADDR] [--concurrency N] [--num-gpus G] [--overwrite]

The jobs are folder mode's (:func:`~edgesr.runtime.upscale_folder.folder_jobs`: the mirrored names,
outputs that exist skipped so an interrupted run resumes); Ray Data spreads them over actors
(``map_batches`` with a callable class, ``concurrency`` actors, ``num_gpus`` each), and each
actor holds one engine and runs folder mode's own per-file code
(:func:`~edgesr.runtime.upscale_folder.upscale_folder`): edgesr's reader (EXIF orientation, 16-bit,
gray, alpha), tiling and atomic no-clobber writer, so every output file is byte for byte
folder mode's. The actors read and write the paths themselves, so on a multi-node cluster
IN_DIR and OUT_DIR must be on a shared file system mounted at the same path on every node.
Ray's ``read_images``/``write_images`` are not used: they decode with PIL without edgesr's
input handling and name outputs their own way. A file that fails is listed at the end and the
others go on (exit 1, as folder mode).

Never imports torch; ``ray`` is imported only when a run starts (the ``serve`` extra). The
command lines are ``edgesr.runtime.ray_batch_run`` (``edgesr-run --ray``: every edgesr-run
flag, the engine opened in each actor as folder mode opens it) and
``edgesr.runtime.ray_batch_cli`` (``edgesr-batch``: an ONNX file and an engine).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgesr.errors import ConfigError
from edgesr.runtime.engines.protocol import Engine
from edgesr.fileio import ensure_folder
from edgesr.runtime.upscale_folder import FolderItem, FolderReport, folder_jobs, upscale_folder

PROG = "edgesr-batch"
EXIT_SOME_FAILED = 1  # as edgesr-run's folder mode


class FolderActor:
    """One Ray actor: an engine opened once, then folder mode on each batch of (src, dst)."""

    def __init__(self, *, opener: Callable[[], Engine], input_dir: str, output_dir: str,
                 overwrite: bool, folder_options: dict[str, Any]) -> None:
        self.engine = opener()
        self.input_dir, self.output_dir, self.overwrite = input_dir, output_dir, overwrite
        self.folder_options = folder_options

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        jobs = [(Path(src), Path(dst)) for src, dst in zip(batch["src"], batch["dst"])]
        report = upscale_folder(self.input_dir, self.output_dir, engine=self.engine, jobs=jobs,
                                overwrite=self.overwrite, **self.folder_options)
        return {"src": [str(i.input_path) for i in report.items],
                "dst": [str(i.output_path) for i in report.items],
                "status": [i.status for i in report.items],
                "error": [i.error for i in report.items]}


def open_onnx_engine(engine: str, model_path: str) -> Engine:
    """``open_engine(engine, model_path=...)`` with the engine's defaults (edgesr-batch's)."""
    from edgesr.runtime.engines import open_engine

    return open_engine(engine, model_path=model_path)


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 (ray[data])
    except ImportError:
        raise ConfigError("running on Ray needs Ray Data: pip install -e '.[serve]' "
                          "(ray[data] is not installed here)") from None
    return ray


def require_ray() -> None:
    """One-line ConfigError when Ray Data is not installed (the ``serve`` extra)."""
    _ray()


def upscale_folder_ray(input_dir: str | Path, output_dir: str | Path, *,
                       model_path: str | Path | None = None, engine: str = "ort",
                       opener: Callable[[], Engine] | None = None,
                       jobs: list[tuple[Path, Path]] | None = None, address: str | None = None,
                       concurrency: int = 1, num_gpus: float = 0, overwrite: bool = False,
                       folder_options: dict[str, Any] | None = None,
                       on_item: Callable[[FolderItem], None] | None = None) -> FolderReport:
    """Folder mode through Ray Data (module notes). Each actor opens its engine with
    ``opener()`` (picklable: Ray sends it to the actors), or else ``engine`` on ``model_path``.
    ``jobs`` default to :func:`folder_jobs`'s; ``folder_options`` go to
    :func:`upscale_folder` (tile_px, overlap_px, memory_budget_bytes, max_pixels, max_output_mb, outscale);
    ``on_item`` sees each file as its result comes back. ``address`` None starts a local
    cluster (stopped at the end, Ctrl-C included); else it joins that cluster (``auto``,
    ``ray://host:10001`` ...)."""
    jobs = folder_jobs(input_dir, output_dir) if jobs is None else jobs
    if opener is None:
        if model_path is None:
            raise ConfigError("upscale_folder_ray needs model_path or opener")
        opener = functools.partial(open_onnx_engine, engine, str(model_path))
    ray = _ray()  # before anything is written
    ensure_folder(Path(output_dir), what="output folder")
    report = FolderReport()
    todo = []
    for src, dst in jobs:  # outputs that exist: skipped here, without a trip through Ray
        if dst.exists() and not overwrite and not dst.is_dir():
            report.items.append(FolderItem(input_path=src, output_path=dst, status="skipped"))
        else:
            todo.append({"src": str(src), "dst": str(dst)})
    if not todo:
        return report
    started = not ray.is_initialized()
    if started:  # no dashboard, no usage report: nothing but the cluster's own traffic
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        actor_args = {"opener": opener, "input_dir": str(input_dir), "output_dir": str(output_dir),
                      "overwrite": overwrite, "folder_options": dict(folder_options or {})}
        rows = ray.data.from_items(todo).map_batches(
            FolderActor, fn_constructor_kwargs=actor_args, batch_size=1, num_gpus=num_gpus,
            compute=ray.data.ActorPoolStrategy(size=concurrency), batch_format="numpy",
        ).iter_rows()
        done = []
        for row in rows:  # streamed as actors finish files, so on_item reports progress
            item = FolderItem(input_path=Path(row["src"]), output_path=Path(row["dst"]),
                              status=str(row["status"]), error=str(row["error"]))
            done.append(item)
            if on_item is not None:
                on_item(item)
    finally:
        if started:
            ray.shutdown()
    report.items += sorted(done, key=lambda item: str(item.input_path))
    return report
