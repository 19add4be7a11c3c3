"""Every ``docs/... §N`` style citation in the repository names a file and a section that exist.

The code cites its design and the Google facts it relies on by section (``docs/gcp-facts.md §3.3``,
``design §1``, ``NOTES.md §0``); a citation that points nowhere leaves a maintainer stranded, so a
renumbered or deleted section fails here, with the file and line of each broken citation.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.paths import ROOT

# How the tree names each cited document, and the file it means.
ALIASES = {
    "docs/design.md": "docs/design.md", "design.md": "docs/design.md", "design": "docs/design.md",
    "docs/gcp-facts.md": "docs/gcp-facts.md", "gcp-facts.md": "docs/gcp-facts.md", "facts": "docs/gcp-facts.md",
    "docs/peers.md": "docs/peers.md", "peers.md": "docs/peers.md",
    "docs/style.md": "docs/style.md", "style.md": "docs/style.md",
    "reference/gcp-http-logs/NOTES.md": "reference/gcp-http-logs/NOTES.md",
    "NOTES.md": "reference/gcp-http-logs/NOTES.md",
}
_SECTION = r"§ ?\d+(?:\.\d+)*"
# A document named by path (docs/… or reference/…, any file) or by alias, then one or more sections:
# "docs/gcp-facts.md §3.2, §3.3", "§3.1/§3.2", "design §1 and §3", "style.md point 7".
CITATION = re.compile(
    r"(?<![\w/.-])(?P<doc>(?:docs|reference)/[\w./-]+\.md|" + "|".join(
        re.escape(alias) for alias in sorted(ALIASES, key=len, reverse=True) if "/" not in alias)
    + r")`?,? (?P<sections>(?:" + _SECTION + r"|point \d+)(?:(?:, | and |/)" + _SECTION + r")*)",
    re.IGNORECASE,
)
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()
SCANNED_SUFFIXES = {".py", ".md", ".tf", ".yaml", ".yml", ".toml", ".cfg", ".txt", ""}


def sections_of(path: Path) -> set[str]:
    return set(HEADING.findall(path.read_text(encoding="utf-8")))


def broken_citations(text: str, root: Path) -> list[str]:
    """Each citation in ``text`` whose document or section does not exist under ``root``."""
    broken = []
    for match in CITATION.finditer(text):
        name = match.group("doc")
        target = root / ALIASES.get(name, ALIASES.get(name.lower(), name))
        if not target.is_file():
            broken.append(f"{match.group(0)!r}: no file {target.relative_to(root)}")
            continue
        known = sections_of(target)
        for number in re.findall(r"\d+(?:\.\d+)*", match.group("sections")):
            if number not in known:
                broken.append(f"{match.group(0)!r}: {target.relative_to(root)} has no section {number}")
    return broken


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / name for name in listed.stdout.splitlines()
            if Path(name).suffix in SCANNED_SUFFIXES and not name.startswith("tests/fixtures/")
            and name != SELF]  # this file's examples of broken citations are meant to be broken


def test_every_citation_in_the_tree_resolves() -> None:
    problems = []
    for path in tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for problem in broken_citations(text, ROOT):
            problems.append(f"{path.relative_to(ROOT)}: {problem}")
    assert not problems, "\n".join(problems)


def test_the_tree_cites_each_document() -> None:
    """The scan finds real citations (a regex that matched nothing would pass the test above)."""
    cited = set()
    for path in tracked_files():
        if path.is_file() and path.suffix == ".py":
            cited |= {ALIASES.get(m.group("doc"), ALIASES.get(m.group("doc").lower(), m.group("doc")))
                      for m in CITATION.finditer(path.read_text(encoding="utf-8"))}
    assert {"docs/design.md", "docs/gcp-facts.md", "docs/peers.md", "reference/gcp-http-logs/NOTES.md"} <= cited


@pytest.mark.parametrize("text, expected", [
    ("see docs/gcp-facts.md §3.3", []),
    ("(docs/gcp-facts.md §3.2, §3.3)", []),
    ("design §1 and §3", []),
    ("style.md point 7", []),
    ("NOTES.md §0", []),
    ("see docs/gcp-facts.md §3.9", ["has no section 3.9"]),
    ("(docs/gcp-facts.md §3.2, §99)", ["has no section 99"]),
    ("facts §3.1/§3.7", ["has no section 3.7"]),
    ("design §7", ["has no section 7"]),
    ("docs/nowhere.md §1", ["no file docs/nowhere.md"]),
    ("reference/gcp-http-logs/NOTES.md §9", ["has no section 9"]),
])
def test_broken_citations_are_reported(text: str, expected: list[str]) -> None:
    found = broken_citations(text, ROOT)
    assert len(found) == len(expected), found
    for problem, fragment in zip(found, expected):
        assert fragment in problem
