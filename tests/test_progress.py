"""edgesr.progress.step_status: on a terminal, the last step logged and a clock that moves
while one step runs; elsewhere, nothing but the log lines. The terminal is a real
pseudo-terminal (100 columns) on the subprocess's stderr; stdout stays a pipe."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import logging, time
    from edgesr.cli_util import setup_logging
    from edgesr.progress import step_status

    setup_logging(verbose=False)
    log = logging.getLogger("edgesr.demo")
    with step_status("demo"):
        log.info("tracing...")
        time.sleep(2.4)  # one long step: only the redraw thread can move the clock
        print("summary line")
        log.info("checking...")
    print("done")
""")


def _on_a_terminal(script: Path) -> tuple[str, str]:
    """(what the terminal showed on stderr, stdout) of ``python script``."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 0-column pty hides the bar
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    shown = b""
    while select.select([master], [], [], 30)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed its side
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    stdout = child.communicate(timeout=30)[0]
    assert child.returncode == 0, shown
    return shown.decode(), stdout


def test_a_terminal_gets_the_step_and_a_moving_clock(tmp_path: Path) -> None:
    script = tmp_path / "demo.py"
    script.write_text(SCRIPT)
    shown, stdout = _on_a_terminal(script)
    assert stdout == "summary line\ndone\n"
    clocks = re.findall(r"demo: tracing\.\.\. \[00:(\d\d)\]", shown)
    assert {"01", "02"} <= set(clocks), shown  # redrawn during the one step
    lines = shown.replace("\r\n", "\n").split("\n")
    assert any(line.endswith("tracing...") for line in lines) and any(line.endswith("checking...") for line in lines)


def test_elsewhere_only_the_log_lines(tmp_path: Path) -> None:
    script = tmp_path / "demo.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr == "tracing...\nchecking...\n" and done.stdout == "summary line\ndone\n"
