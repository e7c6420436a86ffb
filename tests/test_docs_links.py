"""The documentation's cross-references resolve: relative Markdown links name files that exist, and every
``docs/<file>.md, "<section>"`` reference in the docs and the code names a section that the file has (a heading, or
a bold lead-in such as ``- **Optimiser:**``)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: ``[text](target)`` — the target up to the first space or closing parenthesis
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: ``docs/models.md, "Optimiser"`` / ``docs/experiments.md ("Twelfth session"`` / across a line break
SECTION_REF = re.compile(r"(docs/[\w.-]+\.md)\s*,?\s*\(?\s*\"([^\"]+)\"")


def _tracked(*patterns: str) -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / p for p in out.stdout.split()]


def _sections(doc: Path) -> list[str]:
    """Heading texts and bold lead-ins of ``doc``, whitespace folded."""
    text = doc.read_text(encoding="utf-8")
    heads = [re.sub(r"^#+\s*", "", ln) for ln in text.splitlines() if ln.startswith("#")]
    bolds = re.findall(r"\*\*([^*]+)\*\*", text)
    return [" ".join(s.split()) for s in heads + bolds]


def test_relative_markdown_links_resolve() -> None:
    broken = []
    for md in _tracked("*.md"):
        for target in LINK.findall(md.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            if not (md.parent / path).exists():
                broken.append(f"{md.relative_to(ROOT)} -> {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_section_references_name_existing_sections() -> None:
    missing = []
    cache: dict[Path, list[str]] = {}
    for f in _tracked("*.md", "*.py"):
        if f == Path(__file__).resolve():
            continue  # this file quotes the pattern in its examples
        for doc_name, quoted in SECTION_REF.findall(f.read_text(encoding="utf-8")):
            doc = ROOT / doc_name
            want = " ".join(quoted.split()).rstrip(":")
            if not doc.exists():
                missing.append(f"{f.relative_to(ROOT)}: {doc_name} does not exist")
                continue
            sections = cache.setdefault(doc, _sections(doc))
            if not any(s.startswith(want) for s in sections):
                missing.append(f"{f.relative_to(ROOT)}: {doc_name} has no section {want!r}")
    assert not missing, "\n".join(missing)


def test_section_reference_pattern_catches_a_wrong_file() -> None:
    """The check above can fail: a session quoted against the summary file is not found there."""
    sections = _sections(ROOT / "docs" / "models.md")
    assert not any(s.startswith("Twelfth session") for s in sections)
    assert any(s.startswith("Twelfth session") for s in _sections(ROOT / "docs" / "experiments.md"))
    assert SECTION_REF.findall('see docs/models.md,\n"Whole view")') == [("docs/models.md", "Whole view")]
