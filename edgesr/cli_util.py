"""What every edgesr command shares: one error path, exit codes, logging setup.

Standard library only: the runtime's ``edgesr-run`` uses it on machines without torch.

The error path (:func:`run_cli`), the same for all five console scripts:

- an ``EdgeSRError``, ``OSError`` or ``ValueError`` is one line on stderr and exit code 2;
- a missing optional dependency is one line naming the extra to install, exit code 2;
- a closed stdout (``edgesr-run ... | head -0``) is ignored: the work finishes, quietly;
- anything else is a bug: one line, exit code 1, and the traceback with ``-v``;
- Ctrl-C is one line and exit code 130.
"""

from __future__ import annotations

import io
import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TextIO

from edgesr.errors import EdgeSRError, MissingExtraError

EXIT_OK = 0
EXIT_BUG = 1
EXIT_ERROR = 2  # argparse uses 2 for usage errors too: "you asked for something wrong"
EXIT_INTERRUPTED = 130


def command_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """A parser whose description is the module docstring's first paragraph and whose epilog
    (examples, notes) is the rest, kept as written; ``-v`` for debug logging."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0],
                                     epilog=doc.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (and tracebacks)")
    return parser


def setup_logging(*, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s" if not verbose else "%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


class _ClosedPipeTolerantStdout(io.TextIOBase):
    """stdout that turns into /dev/null once its reader has gone (``| head``).

    The summary lines are a courtesy; the work (an image written, a model exported) must not
    die halfway, nor end in a BrokenPipeError traceback at interpreter exit.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._divert()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._divert()

    def _divert(self) -> None:
        try:  # point the stream's fd at /dev/null so the flush at exit has nowhere to fail
            fd = self._stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
            pass
        self._stream = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()


def _wants_traceback(argv: Sequence[str] | None) -> bool:
    args = sys.argv[1:] if argv is None else list(argv)
    return "-v" in args or "--verbose" in args


def _missing_module(exc: ImportError) -> str | None:
    """The top-level name of a third-party module that is not installed, else None (a bug)."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or not name or name == "edgesr":
        return None
    return name


def run_cli(
    prog: str,
    main: Callable[[Sequence[str] | None], int],
    argv: Sequence[str] | None,
    *,
    extra: str | None = None,
) -> int:
    """Run ``main`` through the one error path (module notes). ``extra`` is the optional
    dependency group the command needs (``export``, ``train``), named when an import fails."""
    verbose = _wants_traceback(argv)
    original_stdout = sys.stdout
    sys.stdout = _ClosedPipeTolerantStdout(original_stdout)
    try:
        return _run_guarded(prog, main, argv, extra=extra, verbose=verbose)
    finally:
        sys.stdout.flush()  # a closed pipe is diverted here, not at interpreter exit
        sys.stdout = original_stdout


def _run_guarded(
    prog: str,
    main: Callable[[Sequence[str] | None], int],
    argv: Sequence[str] | None,
    *,
    extra: str | None,
    verbose: bool,
) -> int:

    def fail(message: str, code: int) -> int:
        if verbose:  # -v: the traceback too (called inside the except blocks below)
            traceback.print_exc(file=sys.stderr)
        print(f"{prog}: error: {message}", file=sys.stderr)
        return code

    try:
        return main(argv)
    except EdgeSRError as exc:
        return fail(str(exc), EXIT_ERROR)
    except ImportError as exc:
        module = _missing_module(exc)
        if module is None or extra is None:
            return fail(f"internal error: {type(exc).__name__}: {exc} (a bug: rerun with -v "
                        "for the traceback and report it)", EXIT_BUG)
        return fail(str(MissingExtraError(command=prog, extra=extra, module=module)), EXIT_ERROR)
    except BrokenPipeError:
        return EXIT_OK  # stderr or a pipe we wrote ourselves has gone: nothing left to tell
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}", EXIT_ERROR)
    except ValueError as exc:
        return fail(" ".join(str(exc).split()) or type(exc).__name__, EXIT_ERROR)
    except MemoryError:
        return fail("out of memory; use smaller inputs or tiles (--tile), or a machine with more "
                    "memory", EXIT_ERROR)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 (the one place that turns bugs into an exit code)
        return fail(f"internal error: {type(exc).__name__}: {exc} (a bug: rerun with -v for the "
                    "traceback and report it)", EXIT_BUG)
