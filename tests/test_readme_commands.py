"""The README's quick start stays what CI runs: its second command is .ci/run's install lines
and test command (read from .ci/run itself), and its first installs the runtime only."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line for block in blocks[:2] for line in block.strip().splitlines()]


def _ci_commands() -> list[list[str]]:
    """.ci/run's pip installs and its last line, as argument lists without `python -m` and
    --quiet (the README shows them as a user types them)."""
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in lines if line.startswith("python -m pip install") and "--upgrade pip" not in line]
    commands.append([line for line in lines if line and not line.startswith("#")][-1])
    return [[w for w in shlex.split(c) if w not in ("python", "-m", "--quiet")] for c in commands]


def _install_words(commands: list[list[str]]) -> list[list[str]]:
    """Each pip install's words; the --no-deps installs merged (.ci/run makes two of one)."""
    installs = [c[2:] for c in commands if c[:2] == ["pip", "install"]]
    no_deps = sorted(w for c in installs if "--no-deps" in c for w in c if w != "--no-deps")
    return [c for c in installs if "--no-deps" not in c] + [["--no-deps", *no_deps]]


def test_second_command_is_what_ci_runs() -> None:
    second = _quick_start_commands()[1]
    readme = [[w for w in shlex.split(part) if w not in ("python", "-m")] for part in second.split(" && ")]
    ci = _ci_commands()
    assert _install_words(readme) == _install_words(ci)
    assert readme[-1] == ci[-1] == ["pytest", "-q", "-n", "2"]


def test_first_command_installs_the_runtime_only_and_runs_the_example() -> None:
    first = _quick_start_commands()[0]
    assert 'pip install -e ".[cpu]"' in first and "constraints" not in first
    example = re.search(r"edgesr-run (\S+) -o out\.png", first)
    assert example is not None and (REPO / example.group(1)).is_file()


def test_every_relative_link_in_the_readme_and_docs_exists() -> None:
    """The README links only documents that exist (and so does each document)."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{page.relative_to(REPO)} links {target}, which does not exist"


def test_the_readme_links_every_document() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for doc in sorted((REPO / "docs").glob("*.md")):
        assert f"](docs/{doc.name})" in readme, f"README does not link docs/{doc.name}"
