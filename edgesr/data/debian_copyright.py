"""The Files/Copyright/License stanzas of a machine-readable Debian copyright file (DEP-5).

Both corpus sources that name a holder per photo (mate-backgrounds, lomiri-wallpapers-*) read
them from here. A field's value runs on over the indented lines below it; holders lose their
e-mail addresses, one holder per line, joined by "; ". python-debian parses DEP-5 in full, but
it is not a dependency and these files need only these three fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class CopyrightStanza:
    files: tuple[str, ...]  # the paths or globs of its Files field
    holders: str
    licence: str  # the licence's short name, e.g. "CC-BY-4.0"


def _fields(stanza: str) -> dict[str, list[str]]:
    """Field name -> its lines (the first line's value, then each continuation line)."""
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stanza.splitlines():
        if line[:1].isspace() and current is not None:
            current.append(line.strip())
        elif ":" in line:
            name, value = line.split(":", 1)
            current = fields.setdefault(name.strip(), [])
            current.append(value.strip())
    return fields


def copyright_stanzas(text: str) -> list[CopyrightStanza]:
    """The stanzas that have all of Files, Copyright and License."""
    stanzas = []
    for block in text.split("\n\n"):
        fields = _fields(block)
        if not {"Files", "Copyright", "License"} <= fields.keys():
            continue
        files = tuple(path for line in fields["Files"] for path in line.split())
        holders = "; ".join(re.sub(r"\s*<[^>]*>", "", line).strip() for line in fields["Copyright"] if line)
        licence = fields["License"][0].split()[0] if fields["License"][0] else ""
        stanzas.append(CopyrightStanza(files, holders, licence))
    return stanzas
