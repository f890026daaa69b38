"""Folder mode of ``edgesr-run``: every image under a folder into a mirrored output tree.

Names follow Real-ESRGAN (``{name}_{suffix}.{ext}``); an existing output is skipped so an
interrupted run resumes; a file that fails is recorded and the run goes on (the CLI prints
one line for all of them). Inputs are never outputs: the layouts that would overwrite one are
refused before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgesr.errors import EdgeSRError, ImageError, printable
from edgesr.fileio import ensure_folder
from edgesr.image_guard import DEFAULT_MAX_PIXELS
from edgesr.runtime.engines.protocol import Engine
from edgesr.runtime.image_folders import list_images, mirror_output_path, output_extension
from edgesr.runtime.imageio import SUPPORTED_EXTENSIONS
from edgesr.runtime.output_budget import DEFAULT_MAX_OUTPUT_MB
from edgesr.runtime.tile_plan import DEFAULT_MEMORY_BUDGET_MB, MIB
from edgesr.runtime.upscale import TileProgressFactory, UpscaleResult, upscale_file

__all__ = ["FolderItem", "FolderReport", "folder_jobs", "upscale_folder"]


@dataclass(frozen=True, kw_only=True)
class FolderItem:
    """One file of a folder run: ``status`` is "done", "skipped" (output exists) or "failed"."""

    input_path: Path
    output_path: Path
    status: str
    error: str = ""
    result: UpscaleResult | None = None


@dataclass(kw_only=True)
class FolderReport:
    """Counts and items of :func:`upscale_folder`."""

    items: list[FolderItem] = field(default_factory=list)

    def _count(self, status: str) -> int:
        return sum(1 for item in self.items if item.status == status)

    @property
    def done(self) -> int:
        return self._count("done")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def failed(self) -> int:
        return self._count("failed")

    def failed_summary(self, root: str | os.PathLike[str], *, names_shown: int = 5) -> str:
        """The failed files in one line (folder mode's promise: one line for all of them, each
        one's reason in the debug log): how many, the first few names relative to ``root``,
        and the first reason."""
        failed = [item for item in self.items if item.status == "failed"]
        if not failed:
            return ""
        names = [printable(os.path.relpath(item.input_path, root)) for item in failed]
        shown = ", ".join(names[:names_shown])
        if len(names) > names_shown:
            shown += f" and {len(names) - names_shown} more"
        return (f"{len(failed)} of {len(self.items)} images failed ({shown}); the first: "
                f"{failed[0].error}; -v lists each one's reason")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def folder_jobs(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    suffix: str = "",
    ext: str = "auto",
) -> list[tuple[Path, Path]]:
    """(input file, mirrored output file) for every image under ``input_dir``.

    Output names follow Real-ESRGAN: ``{name}_{suffix}.{ext}`` (``{name}.{ext}`` for an empty
    suffix), ``ext`` "auto" keeping the input's extension and a transparent input kept in PNG
    when ``ext`` cannot hold alpha (:func:`~edgesr.runtime.image_folders.output_extension`).

    Refuses an output folder that is the input folder, an existing file, and any layout in
    which an output path is an input file (the input folder inside the output folder). Images
    under the output folder (when it lies inside the input folder) are not inputs: they are
    earlier outputs, so a resumed run never upscales its own outputs.
    """
    src, dst = Path(input_dir), Path(output_dir)
    if dst.exists() and not dst.is_dir():
        raise ImageError(
            f"output {str(output_dir)!r} is a file, but the input {str(input_dir)!r} is a folder; "
            "pass an output folder (it is created when missing)"
        )
    if not dst.exists() and dst.suffix.lower() in SUPPORTED_EXTENSIONS:
        raise ImageError(
            f"the input {str(input_dir)!r} is a folder, so the output must be a folder, but "
            f"{str(output_dir)!r} looks like an image file name; pass a folder name"
        )
    src_abs, dst_abs = Path(os.path.abspath(src)), Path(os.path.abspath(dst))
    if src_abs == dst_abs or (dst.exists() and os.path.samefile(src, dst)):
        raise ImageError(
            f"the output folder {str(output_dir)!r} is the input folder; edgesr never overwrites "
            "inputs: choose another output folder"
        )
    files = list_images(src)
    if _inside(dst_abs, src_abs):
        files = [f for f in files if not _inside(Path(os.path.abspath(f)), dst_abs)]
    if not files:
        raise ImageError(
            f"no images found in {str(input_dir)!r} (looked for {' '.join(SUPPORTED_EXTENSIONS)}, "
            "in subfolders too); check the folder"
        )
    name_suffix = f"_{suffix}" if suffix else ""
    jobs = [(f, mirror_output_path(f, input_root=src, output_root=dst, suffix=name_suffix,
                                   extension=output_extension(f, ext)))
            for f in files]
    inputs = {os.path.realpath(f): f for f in files}
    for _, out in jobs:  # e.g. the input folder lies inside the output folder
        clash = inputs.get(os.path.realpath(out))
        if clash is not None:
            raise ImageError(
                f"the output folder {str(output_dir)!r} overlaps the input folder: {out} would "
                f"replace the input {clash}, and edgesr never overwrites inputs; choose an output "
                "folder outside the input tree"
            )
    return jobs


def upscale_folder(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    engine: Engine,
    tile_px: int | None = None,
    overlap_px: int | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_MB * MIB,
    overwrite: bool = False,
    jobs: list[tuple[Path, Path]] | None = None,
    on_item: Callable[[FolderItem], None] | None = None,
    tile_progress: TileProgressFactory | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    outscale: float | None = None,
    max_output_mb: int = DEFAULT_MAX_OUTPUT_MB,
) -> FolderReport:
    """Upscale every image under ``input_dir`` into the mirrored tree under ``output_dir``.

    The output folder (and subfolders) are created as needed. Existing outputs are skipped
    unless ``overwrite`` (so an interrupted run resumes). A file that fails (an EdgeSRError, or
    running out of memory) is recorded as "failed" and the run goes on; ``on_item`` is called
    after every file.
    """
    jobs = folder_jobs(input_dir, output_dir) if jobs is None else jobs
    report = FolderReport()
    for src, dst in jobs:
        if dst.exists() and not overwrite and not dst.is_dir():
            item = FolderItem(input_path=src, output_path=dst, status="skipped")
        else:
            try:
                ensure_folder(dst.parent, what="output folder")
                result = upscale_file(
                    src, dst, engine=engine, tile_px=tile_px, overlap_px=overlap_px,
                    memory_budget_bytes=memory_budget_bytes, overwrite=overwrite,
                    tile_progress=tile_progress, max_pixels=max_pixels, outscale=outscale,
                    max_output_mb=max_output_mb,
                )
                item = FolderItem(input_path=src, output_path=dst, status="done", result=result)
            except (EdgeSRError, MemoryError) as exc:
                message = str(exc) if isinstance(exc, EdgeSRError) else "out of memory; use smaller tiles"
                item = FolderItem(input_path=src, output_path=dst, status="failed", error=message)
            except OSError as exc:  # e.g. mkdir refused
                item = FolderItem(input_path=src, output_path=dst, status="failed",
                                  error=f"{exc.strerror or exc}: {exc.filename or dst}")
        report.items.append(item)
        if on_item is not None:
            on_item(item)
    return report
