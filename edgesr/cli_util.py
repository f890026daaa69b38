"""What every edgesr command shares: one error path, exit codes, logging setup.

Standard library only: the runtime's ``edgesr-run`` uses it on machines without torch.

The error path (:func:`run_cli`), the same for all five console scripts:

- an ``EdgeSRError``, ``OSError`` or ``ValueError`` is one line on stderr and exit code 2;
- a missing optional dependency is one line naming the extra to install, exit code 2;
- a stdout whose encoding cannot show a name (``PYTHONIOENCODING=ascii``) gets it escaped;
- a closed stdout (``edgesr-run ... | head -0``) is ignored: the work finishes, quietly; so is
  a stdout or stderr closed before the start (``>&-``): /dev/null takes its place, so no file
  the command opens can land on descriptor 1 or 2 and receive its messages;
- a usage error (argparse: a missing or malformed flag) is one line and exit code 2, with
  ``--help`` named for the usage text;
- an input nested too deeply to parse (``RecursionError``) is one line and exit code 2;
- every message is one line: control characters in names are escaped (:func:`printable`);
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

from edgesr.errors import EdgeSRError, MissingExtraError, condensed, printable

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


class _OneLineFormatter(logging.Formatter):
    """Each record on one line: control characters (a newline in a file name) escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def setup_logging(*, verbose: bool) -> None:
    before = list(logging.getLogger().handlers)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s" if not verbose else "%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:  # the handler made here (-v keeps records as they are)
        for handler in logging.getLogger().handlers:
            if handler not in before:
                handler.setFormatter(_OneLineFormatter("%(message)s"))


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
        except UnicodeEncodeError:  # a name the terminal's encoding cannot show (ü under ascii):
            # the work is done, so the summary is escaped, not a failure after the fact
            encoding = getattr(self._stream, "encoding", None) or "ascii"
            return self.write(text.encode(encoding, "backslashreplace").decode(encoding))

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


class UsageError(EdgeSRError):
    """A command line argparse cannot parse (its message, one line)."""


def _usage_error(parser: argparse.ArgumentParser, message: str) -> None:
    """argparse's ``error`` as one line through the shared error path (usage stays in --help)."""
    raise UsageError(f"{' '.join(message.split())} (see {parser.prog} --help)")


def _reserve_standard_streams() -> None:
    """Point a closed descriptor 0, 1 or 2 at /dev/null (and a missing sys.stdout/stderr at
    it): otherwise the next file opened would take the number and receive the output."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity; all CPUs where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_threads(value: int | None, *, flag: str = "--threads") -> None:
    """``value`` threads (0 or None: the default) must be at most the usable cores: more only
    adds contention, and a huge count exhausts memory creating them."""
    if value is None or value == 0:
        return
    cores = usable_cores()
    if value < 0 or value > cores:
        raise UsageError(f"{flag} {value}: expected 0 (the default) to {cores}, the cores this "
                         "process may use")


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
    _reserve_standard_streams()
    original_stdout, original_error = sys.stdout, argparse.ArgumentParser.error
    sys.stdout = _ClosedPipeTolerantStdout(original_stdout)
    argparse.ArgumentParser.error = _usage_error  # every parser and sub-parser of the command
    try:
        return _run_guarded(prog, main, argv, extra=extra, verbose=verbose)
    finally:
        argparse.ArgumentParser.error = original_error
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
        print(f"{prog}: error: {condensed(message)}", file=sys.stderr)  # one line, whatever a name holds
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
    except RecursionError:  # json and friends on a hostile, deeply nested file
        return fail("an input is nested too deeply to read (a hostile or broken file?); check the "
                    "files given", EXIT_ERROR)
    except MemoryError:
        return fail("out of memory; use smaller inputs or tiles (--tile), or a machine with more "
                    "memory", EXIT_ERROR)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 (the one place that turns bugs into an exit code)
        return fail(f"internal error: {type(exc).__name__}: {exc} (a bug: rerun with -v for the "
                    "traceback and report it)", EXIT_BUG)
