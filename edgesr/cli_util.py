"""What every edgesr command shares: one-line errors, exit codes, logging setup.

Standard library only: the runtime's ``edgesr-run`` uses it on machines without torch.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from edgesr.errors import EdgeSRError

EXIT_OK = 0
EXIT_ERROR = 2  # argparse uses 2 for usage errors too: "you asked for something wrong"
EXIT_INTERRUPTED = 130


def setup_logging(*, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s" if not verbose else "%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_cli(prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None) -> int:
    """Run ``main``; an EdgeSRError becomes one line on stderr and exit code 2."""
    try:
        return main(argv)
    except EdgeSRError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
