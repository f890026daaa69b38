"""Progress for long work made of a few long steps (an export: trace, simplify, self-check).

Standard library and tqdm only (a base dependency), so any command may use it.

A step that runs for a minute inside one library call cannot advance a counter, so this shows
what the command last logged and the time since it started, redrawn each second, on one line
under the log lines (tqdm's logging redirect keeps the two apart). Where stderr is not a
terminal tqdm disables itself (``disable=None``) and nothing changes: the log lines alone, as
before, and no thread is started.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_REDRAW_S = 1.0


class _AboveTheBar(io.TextIOBase):
    """stdout whose writes clear the status line first and redraw it after (a summary printed
    while the line is up would otherwise continue it on the same terminal row)."""

    def __init__(self, stream, tqdm_class) -> None:  # noqa: ANN001
        self._stream = stream
        self._tqdm = tqdm_class

    def write(self, text: str) -> int:
        with self._tqdm.external_write_mode(file=sys.stderr):
            return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()


class _LastStep(logging.Handler):
    """Puts each INFO record's message into the status line."""

    def __init__(self, bar, title: str) -> None:  # noqa: ANN001 (a tqdm bar)
        super().__init__(level=logging.INFO)
        self._bar, self._title = bar, title

    def emit(self, record: logging.LogRecord) -> None:
        step = " ".join(record.getMessage().split())[:60]
        self._bar.set_description_str(f"{self._title}: {step}", refresh=False)


@contextmanager
def step_status(title: str) -> Iterator[None]:
    """``title``, the last step logged and the elapsed time, on a terminal, for the block's span."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    bar = tqdm(total=None, desc=title, bar_format="{desc} [{elapsed}]", disable=None,
               file=sys.stderr, leave=False)
    if bar.disable:
        yield
        return
    stop = threading.Event()

    def redraw() -> None:  # the elapsed time moves while one step runs for minutes
        while not stop.wait(_REDRAW_S):
            bar.refresh()

    step = _LastStep(bar, title)
    root = logging.getLogger()
    thread = threading.Thread(target=redraw, name="edgesr-progress", daemon=True)
    stdout = sys.stdout
    with logging_redirect_tqdm():
        root.addHandler(step)
        sys.stdout = _AboveTheBar(stdout, tqdm)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            sys.stdout = stdout
            root.removeHandler(step)
            bar.close()
