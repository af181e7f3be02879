"""No line longer than 110 characters: in any tracked ``.py`` file, and in the prose of README.md and
docs/*.md (the style guide's rule). Merges glue lines together and nobody notices in a diff; this
names each ``file:line`` so the fix is one look away.

Markdown lines that cannot be wrapped are not prose and are skipped: table rows, fenced code, headings
(a heading is one line by definition) and a line that is a single long URL or link.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 110
SKIP_DIRS = {".venv", "test-artifacts", "__pycache__", ".git", "node_modules"}
# One token, no space: a bare URL, <URL>, [text](URL) with a one-word text, or a reference definition.
UNBREAKABLE = re.compile(r"\s*(<?\S+>?|\[[^\]\s]*\]\(\S+\)|\[[^\]]+\]:\s*\S+)\s*")


def _tracked(pattern: str) -> list[Path]:
    """The repository's files matching ``pattern``; a checkout without git falls back to a walk."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", pattern], cwd=ROOT, capture_output=True,
                             check=True).stdout
        return [ROOT / name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [p for p in ROOT.rglob(pattern)
                if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)]


def _too_long(path: Path, lines) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{number}: {len(line)} characters"
            for number, line in lines if len(line) > LIMIT]


def python_lines(path: Path):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        yield number, line


def prose_lines(path: Path):
    """The lines of a Markdown file that are prose: outside fences, not tables, headings or a lone URL."""
    fence = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.lstrip()
        marker = stripped[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else (fence or marker)
            continue
        if fence or stripped.startswith(("|", "#")) or UNBREAKABLE.fullmatch(line):
            continue
        yield number, line


def test_no_python_line_is_longer_than_110_characters():
    files = _tracked("*.py")
    assert len(files) > 50, "the walk found too few Python files to mean anything"
    found = [hit for path in files for hit in _too_long(path, python_lines(path))]
    assert found == [], "wrap these lines (at most 110 characters):\n" + "\n".join(found)


def test_no_readme_or_docs_prose_line_is_longer_than_110_characters():
    files = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    assert all(path.is_file() for path in files) and len(files) > 1
    found = [hit for path in files for hit in _too_long(path, prose_lines(path))]
    assert found == [], "rewrap these prose lines (at most 110 characters):\n" + "\n".join(found)


def test_the_checks_see_what_they_skip_and_what_they_must_not(tmp_path):
    """The Markdown filter skips only what cannot be wrapped: a long paragraph line is still caught."""
    doc = tmp_path / "x.md"
    long_words = "word " * 30
    doc.write_text("\n".join([
        "# " + long_words,                                  # heading: skipped
        "| " + long_words + " |",                           # table row: skipped
        "```",
        long_words,                                         # fenced code: skipped
        "```",
        "https://example.com/" + "a" * 120,                 # a lone URL: skipped
        "[x](https://example.com/" + "a" * 120 + ")",       # a lone link: skipped
        long_words,                                         # prose: caught (line 8)
        "- " + long_words,                                  # list item prose: caught (line 9)
    ]))
    assert [number for number, line in prose_lines(doc) if len(line) > LIMIT] == [8, 9]
