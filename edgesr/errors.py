"""The one error hierarchy every layer raises (standard library only).

Each message says what was received, what was expected and how to fix it.
The command-line tools turn any ``EdgeSRError`` into one line and exit code 2.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable


class EdgeSRError(Exception):
    """Base class of every error edgesr raises on purpose."""


class UnknownNameError(EdgeSRError, KeyError):
    """A model, engine or option name that is not registered."""

    def __init__(self, kind: str, received: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.received = received
        self.known = sorted(known)
        super().__init__(self._message())

    def _message(self) -> str:
        close = difflib.get_close_matches(self.received, self.known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        if len(self.known) <= 12:
            known = ", ".join(self.known)
        else:  # a long table: show the start, not a wall of names
            known = ", ".join(self.known[:8]) + f", ... ({len(self.known)} in all)"
        return f"unknown {self.kind} {self.received!r}.{hint} Known: {known}."

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class ConfigError(EdgeSRError, ValueError):
    """A configuration value or combination that cannot work."""


class WeightsError(EdgeSRError):
    """A weights file that cannot be read or does not fit the model."""


class ImageError(EdgeSRError):
    """An image that cannot be read, written or processed."""


class ModelFileError(EdgeSRError):
    """An ONNX or engine file that is missing, broken or not an edgesr SR model."""


class ExportError(EdgeSRError):
    """Export failed, or the exported file does not match the PyTorch model."""


class EngineUnavailableError(EdgeSRError):
    """The requested inference engine cannot run on this machine."""


class DataError(EdgeSRError):
    """A data folder that is empty, unreadable or unusable for training/evaluation."""


class OutputError(EdgeSRError):
    """An output path that cannot or must not be written (an input, an existing file, a
    read-only or missing folder, a full disk)."""


class TrustError(EdgeSRError):
    """A file or folder that someone other than this user could have written, refused
    (edgesr.trust states the rule)."""


class MissingExtraError(EdgeSRError):
    """A command or feature needs an optional dependency group that is not installed."""

    def __init__(self, *, command: str, extra: str, module: str) -> None:
        super().__init__(
            f"{command} needs the `{extra}` extra ({module} is not installed): "
            f"pip install -e '.[{extra}]'"
        )


def printable(value: object) -> str:
    """``value`` (a path, a name) for a one-line message: control characters (a newline in a
    file name) and undecodable bytes are escaped, everything else is shown as it is."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TORCH_WEIGHTS_ONLY = "Weights only load failed"
_MAX_LINE = 1000


def condensed(text: object) -> str:
    """A third-party message in one line: terminal colour codes dropped, the first line kept
    (torch's several-paragraph ``weights_only`` refusal becomes its one reason), control
    characters escaped, at most 1000 characters."""
    text = _ANSI.sub("", str(text))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    head = lines[0]
    if _TORCH_WEIGHTS_ONLY in head:  # "... can still be loaded ... two options ...": not for us
        reason = next((line.split("error:", 1)[1].strip() for line in lines
                       if "WeightsUnpickler error:" in line), "")
        reason = reason.split(". ")[0]
        head = (head.split(_TORCH_WEIGHTS_ONLY)[0] + "it is a pickle that needs more than tensors "
                f"to load{f' ({reason})' if reason else ''}; edgesr never runs code from a file")
    return printable(head if len(head) <= _MAX_LINE else head[: _MAX_LINE - 3] + "...")
