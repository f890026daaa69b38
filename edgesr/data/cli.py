"""edgesr-data: build training corpora from photographs that exist on this machine.

    apt-get download mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04 lomiri-wallpapers-20.04
    edgesr-data photos corpus/ --mate mate-backgrounds_*.deb --plasma plasma-workspace-wallpapers_*.deb \
        --lomiri lomiri-wallpapers-16.04_*.deb --lomiri lomiri-wallpapers-20.04_*.deb

writes corpus/train/ and corpus/val/ (PNG) and corpus/LICENSES.md (every file with its source,
copyright holders and licence). Sources: the scikit-image photos (always) and, with --mate,
the 12 nature photographs of Debian's mate-backgrounds package (GPL-2+), downscaled x2 so their
JPEG artefacts are averaged away before they serve as HR; with --plasma, the 11 photographs among
plasma-workspace-wallpapers' 30 wallpapers (GPL-2+/LGPLv3), at 2560x1600 downscaled x2; with
--lomiri (once per package), the 14 photographs of lomiri-wallpapers-16.04 and -20.04 (CC-BY,
CC-BY-SA, CC0), downscaled x2 or x3 to at most 2048 px, all for training. Validation
files (never Set5/Set14) are fixed: skimage chelsea, coffee, immunohistochemistry; mate
LadyBird, Storm; plasma FallenLeaf.

    edgesr-data tiles corpus/train corpus_edges/train --tile 256 --count 200 --per-image 12

cuts every photo of a folder into half-overlapping tiles and keeps the most detailed ones (the
mean gradient of each tile's x4 LR luma), at most --per-image from one photo: a training or
validation folder in which most patches hold edges (see edgesr.data.detail_tiles for why).
LICENSES.md beside or above the photos is carried over, tile by tile. --rescale 1,0.75,0.5 also
cuts each photo downscaled by those factors (scale augmentation: more, and denser, edge tiles
from the same photos; the cap per photo counts all its sizes).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgesr.cli_util import EXIT_OK, command_parser, run_cli, setup_logging

PROG = "edgesr-data"


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(PROG, __doc__)
    sub = p.add_subparsers(dest="command", required=True)
    photos = sub.add_parser("photos", help="scikit-image photos (+ mate-backgrounds, plasma wallpapers) -> train/ val/")
    photos.add_argument("out", help="output folder (created; existing corpus files are refreshed)")
    photos.add_argument("--mate", help="mate-backgrounds .deb (apt-get download mate-backgrounds) or its unpacked folder")
    photos.add_argument("--plasma", help="plasma-workspace-wallpapers .deb (apt-get download "
                        "plasma-workspace-wallpapers) or its unpacked folder")
    photos.add_argument("--lomiri", action="append", default=[],
                        help="lomiri-wallpapers-16.04 or -20.04 .deb (apt-get download lomiri-wallpapers-16.04 "
                        "lomiri-wallpapers-20.04) or its unpacked folder; repeat it for both (training split only)")
    tiles = sub.add_parser("tiles", help="the most detailed tiles of a folder of photos -> a new folder")
    tiles.add_argument("src", help="folder of photos (e.g. corpus/train)")
    tiles.add_argument("out", help="new or empty folder for the tiles (never overwritten)")
    tiles.add_argument("--tile", type=int, default=256,
                       help="tile side in HR pixels (default 256: 64 LR pixels at x4)")
    tiles.add_argument("--count", type=int, default=200, help="how many tiles to keep in all (default 200)")
    tiles.add_argument("--per-image", type=int, default=12, help="at most this many from one photo (default 12)")
    tiles.add_argument("--scale", type=int, default=4, help="measure detail at this LR scale (default 4)")
    tiles.add_argument("--rescale", type=_factors, default=(1.0,), metavar="F[,F...]",
                       help="also cut each photo downscaled by these factors in [0.01, 1], e.g. 1,0.75,0.5 "
                       "(default 1: the photos as they are)")
    return p


def _factors(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers, e.g. 1,0.75,0.5") from None


def _tiles(args: argparse.Namespace) -> int:
    from edgesr.data.detail_tiles import write_detail_tiles

    tiles = write_detail_tiles(args.src, args.out, tile_px=args.tile, count=args.count,
                               per_image=args.per_image, scale=args.scale, rescales=args.rescale)
    sources = len({t.source for t in tiles})
    photos = "1 photo" if sources == 1 else f"{sources} photos"
    print(f"{len(tiles)} tiles from {photos} in {args.out} (detail {tiles[-1].detail:.2f} to {tiles[0].detail:.2f})")
    print(f"licences: {args.out}/LICENSES.md")
    return EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    if args.command == "tiles":
        return _tiles(args)
    from edgesr.data.photos import build_photo_corpus

    files = build_photo_corpus(args.out, mate=args.mate, plasma=args.plasma, lomiri=args.lomiri)
    for split in ("train", "val"):
        print(f"{split}: {sum(f.split == split for f in files)} images in {args.out}/{split}")
    print(f"licences: {args.out}/LICENSES.md")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
