"""README.md and docs/*.md: every relative link and image resolves, every #anchor names a heading,
the README stays short, links every docs page, lists every command and keeps the set-up commands
that .ci/run runs verbatim."""

from __future__ import annotations

import argparse
import re
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
MAX_README_LINES = 250

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target), with an optional "title"; <target> form too
_INLINE = re.compile(r"!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(\S+)")
_HTML = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _prose_lines(text: str):
    """(line number, line) outside fenced code blocks, with inline code spans removed."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, _CODE_SPAN.sub("", line)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text without markup, lowercased, punctuation other than
    '-' and '_' removed, spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.strip().lower()
    kept = []
    for ch in text:
        if ch in " -_" or unicodedata.category(ch)[0] in "LN":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file (repeated headings get -1, -2 … as on GitHub)."""
    seen: dict[str, int] = {}
    result = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every link and image in a markdown file, outside code."""
    found = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        for m in _INLINE.finditer(line):
            found.append((number, m.group(1).strip("<>")))
        for m in _REFERENCE.finditer(line):
            found.append((number, m.group(1).strip("<>")))
        for m in _HTML.finditer(line):
            found.append((number, m.group(1)))
    return found


def broken_links(path: Path) -> list[str]:
    """Relative links of ``path`` whose file does not exist, and #anchors into markdown files that
    name no heading there. External links (http:, https:, mailto:) are not checked."""
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{number}: {target}"
        if not resolved.exists():
            problems.append(f"{where}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where}: no heading '#{anchor}' in {resolved.name}")
    return problems


def linked_files(path: Path) -> set[Path]:
    return {(path.parent / t.partition("#")[0]).resolve() for _, t in links(path)
            if t.partition("#")[0] and not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.IGNORECASE)}


# ------------------------------------------------------------------------------------------ tests

def test_docs_pages_exist():
    assert len(list(DOCS.glob("*.md"))) >= 5


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_image_resolves(path):
    assert links(path), f"{path.name} has no links at all: the link parser is broken"
    assert broken_links(path) == []


def test_the_checker_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Set-up: two commands\n\n## Results\n\n## Results\n")
    (tmp_path / "pic.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n"
        "[ok](other.md) [ok](other.md#set-up-two-commands) [ok](other.md#results-1) ![ok](pic.png)\n"
        "[ok](#title) [ext](https://example.com/missing.md)\n"
        "[gone](missing.md) ![gone](img/missing.png) [bad anchor](other.md#results-2)\n"
        "[bad local](#nowhere) <img src=\"absent.png\">\n"
        "`[in code](nothing.md)`\n\n```\n[in a block](nothing.md)\n```\n")
    problems = broken_links(page)
    assert [p.split(": ")[1] for p in problems] == [
        "missing.md", "img/missing.png", "other.md#results-2", "#nowhere", "absent.png"]


def test_github_slugs():
    assert slug("Set-up: two commands") == "set-up-two-commands"
    assert slug("Load in C++: the no-Python check") == "load-in-c-the-no-python-check"
    assert slug("Verification (every conversion)") == "verification-every-conversion"
    assert slug("A result you can hand on: the report") == "a-result-you-can-hand-on-the-report"
    assert slug("`--data` and **bold**") == "--data-and-bold"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move the detail into docs/")


def test_every_docs_page_is_linked_from_the_readme():
    linked = linked_files(README)
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert missing == [], f"docs pages not linked from README.md: {missing}"


@pytest.mark.parametrize("path", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_every_docs_page_links_back_to_the_readme(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert "../README.md" in first, f"{path.name}'s first line is not the link back to the README"


def test_the_readme_keeps_the_set_up_commands_ci_runs():
    """.ci/run runs the README's test command verbatim: it must still be in the README's set-up."""
    readme = README.read_text(encoding="utf-8")
    assert "## Set-up: two commands" in readme
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    marker = next(i for i, line in enumerate(ci) if "the README's test command, verbatim" in line)
    command = ci[marker + 1].strip()
    section = readme.split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    assert command in section.splitlines(), "the test command of .ci/run is not in the README's set-up"


def test_the_command_table_lists_every_command():
    from app.cli.parser import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    missing = [name for name in sub.choices if not any(row.startswith(f"| `{name} ") or row.startswith(f"| `{name}`")
                                                       for row in rows)]
    assert missing == [], f"commands missing from the README's command table: {missing}"
