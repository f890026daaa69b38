"""The one error path of the five console scripts (edgesr.cli_util.run_cli)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from edgesr.cli_util import EXIT_BUG, EXIT_ERROR, EXIT_OK, run_cli
from edgesr.errors import ConfigError


def _raising(exc: BaseException):  # noqa: ANN202
    def main(argv: Sequence[str] | None) -> int:
        raise exc
    return main


@pytest.mark.parametrize(("exc", "code", "text"), [
    (ConfigError("bad value; fix it"), EXIT_ERROR, "prog: error: bad value; fix it"),
    (PermissionError(13, "Permission denied", "/ro/out.csv"), EXIT_ERROR,
     "prog: error: /ro/out.csv: Permission denied"),
    (ValueError("could not convert\n string"), EXIT_ERROR, "prog: error: could not convert string"),
    (ModuleNotFoundError("No module named 'onnx'", name="onnx"), EXIT_ERROR,
     "prog: error: prog needs the `export` extra (onnx is not installed): pip install -e '.[export]'"),
    (ModuleNotFoundError("No module named 'edgesr.gone'", name="edgesr.gone"), EXIT_BUG,
     "prog: error: internal error: ModuleNotFoundError"),
    (ZeroDivisionError("division by zero"), EXIT_BUG, "prog: error: internal error: ZeroDivisionError"),
])
def test_each_failure_is_one_line_with_its_exit_code(exc: BaseException, code: int, text: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("prog", _raising(exc), [], extra="export") == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(text) and "Traceback" not in err, err


def test_verbose_adds_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("prog", _raising(ZeroDivisionError("x")), ["-v"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().endswith("report it)")


def test_closed_stdout_does_not_stop_the_work(capsys: pytest.CaptureFixture[str]) -> None:
    done = []

    class Gone:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    def main(argv: Sequence[str] | None) -> int:
        print("engine: ...")  # the reader has gone: swallowed
        done.append(True)
        print("summary")
        return EXIT_OK

    import sys

    real = sys.stdout
    sys.stdout = Gone()
    try:
        assert run_cli("prog", main, []) == EXIT_OK
    finally:
        sys.stdout = real
    assert done == [True] and capsys.readouterr().err == ""
