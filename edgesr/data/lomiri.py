"""The photographs of Debian's ``lomiri-wallpapers-16.04`` and ``lomiri-wallpapers-20.04``.

These two packages hold the Ubuntu Touch community wallpapers: 19 JPEGs of 1365x1074 to
6028x3391, each with its photographer and licence (CC-BY-4.0, CC-BY-SA-3.0/4.0 or CC0-1.0) in
the package's Debian copyright file. ``LOMIRI_PHOTOS`` are the 14 that are photographs, chosen
by looking at each one (a bridge's cables, leaves, a fig, paint brushes, a room, mountains,
a lamp, dogs at a window, a clock, a forest stream, dandelions, a sunset, a nuthatch); the
other five are renders or a coloured texture (``umang``, ``Fossa``, ``Infinite-Sea``,
``Painting-Colors``, ``analogpattern``). The plain ``lomiri-wallpapers`` package holds only
one render, so it is not a source.

Every photo goes to the training split: the validation split stays the one every shipped
stage was chosen on, so a new stage's validation PSNR is comparable with the earlier ones.
Camera JPEGs this large are downscaled x2 or x3 (``edgesr.data.photos.downscale_factor``), which
also keeps one photo from filling the corpus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edgesr.data.debian_copyright import copyright_stanzas
from edgesr.errors import DataError

LOMIRI_BACKGROUNDS = "usr/share/backgrounds"
LOMIRI_PHOTOS = (
    "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
    "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
    "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
    "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
    "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi", "Kleiber_by_Lukas_Baubkus",
)


@dataclass(frozen=True)
class LomiriPhoto:
    jpeg: Path
    series: str  # "16.04" or "20.04": which package it ships in
    licence: str
    holders: str


def lomiri_licences(copyright_text: str) -> dict[str, tuple[str, str, str]]:
    """Photo stem -> (series, licence, holders), from the Debian copyright file's stanzas."""
    licences: dict[str, tuple[str, str, str]] = {}
    for stanza in copyright_stanzas(copyright_text):
        for path in stanza.files:
            if match := re.fullmatch(r"(\d+\.\d+)/(\S+)\.jpg", path):
                licences[match[2]] = (match[1], stanza.licence, stanza.holders)
    return licences


def lomiri_photos(root: Path, package: Path) -> list[LomiriPhoto]:
    """The photographs in an unpacked lomiri-wallpapers-16.04/-20.04 package, with licences."""
    backgrounds = root / LOMIRI_BACKGROUNDS
    found = sorted(p for p in backgrounds.glob("*.jpg") if p.stem in LOMIRI_PHOTOS) if backgrounds.is_dir() else []
    if not found:
        raise DataError(f"{str(package)!r} holds none of the Lomiri photographs under {LOMIRI_BACKGROUNDS}/; pass "
                        "lomiri-wallpapers-16.04's or lomiri-wallpapers-20.04's .deb or its unpacked folder")
    copyrights = sorted(root.glob("usr/share/doc/lomiri-wallpapers-*/copyright"))
    licences = lomiri_licences("\n\n".join(p.read_text(errors="replace") for p in copyrights))
    unknown = ("?", "see the package's copyright file", "see the package's copyright file")
    return [LomiriPhoto(jpeg, *licences.get(jpeg.stem, unknown)) for jpeg in found]
