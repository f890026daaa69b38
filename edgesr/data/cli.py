"""edgesr-data: build training corpora from photographs that exist on this machine.

    apt-get download mate-backgrounds plasma-workspace-wallpapers
    edgesr-data photos corpus/ --mate mate-backgrounds_*.deb --plasma plasma-workspace-wallpapers_*.deb

writes corpus/train/ and corpus/val/ (PNG) and corpus/LICENSES.md (every file with its source,
copyright holders and licence). Sources: the scikit-image photos (always) and, with --mate,
the 12 nature photographs of Debian's mate-backgrounds package (GPL-2+), downscaled x2 so their
JPEG artefacts are averaged away before they serve as HR; with --plasma, the 11 photographs among
plasma-workspace-wallpapers' 30 wallpapers (GPL-2+/LGPLv3), at 2560x1600 downscaled x2. Validation
files (never Set5/Set14) are fixed: skimage chelsea, coffee, immunohistochemistry; mate
LadyBird, Storm; plasma FallenLeaf.
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
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    from edgesr.data.photos import build_photo_corpus

    files = build_photo_corpus(args.out, mate=args.mate, plasma=args.plasma)
    for split in ("train", "val"):
        print(f"{split}: {sum(f.split == split for f in files)} images in {args.out}/{split}")
    print(f"licences: {args.out}/LICENSES.md")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
