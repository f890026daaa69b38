"""edgesr.data.debian_copyright: DEP-5 stanzas as both corpus sources read them. The excerpt is
written out by hand in the layout of mate-backgrounds 1.26's debian/copyright."""

from __future__ import annotations

from edgesr.data.debian_copyright import copyright_stanzas
from edgesr.data.photos import mate_holders

MATE_EXCERPT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mate-backgrounds

Files: nature/Aqua.jpg
       nature/LadyBird.jpg
Copyright: 2008, Charles Barbin <barbinch@free.fr>
License: GPL-2+
Comment: Copyright holders are found in AUTHORS file.

Files: nature/Blinds.jpg
Copyright: 2008, Lennart Poettering <mztabzr@0pointer.de>
           2008, Andrea Cimitan
License: GPL-2+

License: GPL-2+
 This program is free software; you can redistribute it and/or modify
 .
 it under the terms of the GNU General Public License
"""


def test_continuation_lines_extend_files_and_holders() -> None:
    stanzas = copyright_stanzas(MATE_EXCERPT)
    assert [s.files for s in stanzas] == [("nature/Aqua.jpg", "nature/LadyBird.jpg"), ("nature/Blinds.jpg",)]
    assert stanzas[1].holders == "2008, Lennart Poettering; 2008, Andrea Cimitan"
    assert {s.licence for s in stanzas} == {"GPL-2+"}  # the licence-text stanza has no Files


def test_mate_holders_name_every_listed_photo() -> None:
    assert mate_holders(MATE_EXCERPT) == {"Aqua": "2008, Charles Barbin", "LadyBird": "2008, Charles Barbin",
                                          "Blinds": "2008, Lennart Poettering; 2008, Andrea Cimitan"}
