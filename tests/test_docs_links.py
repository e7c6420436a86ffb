"""The documentation's cross-references resolve: relative Markdown links name files that exist, and every
``docs/<file>.md, "<section>"`` reference in the docs and the code names a section that the file has (a heading, or
a bold lead-in such as ``- **Optimiser:**``)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: ``[text](target)`` — the target up to the first space or closing parenthesis
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: ``docs/models.md, "Optimiser"`` / ``docs/experiments.md ("Twelfth session"`` / across a line break
SECTION_REF = re.compile(r"(docs/[\w.-]+\.md)\s*,?\s*\(?\s*\"([^\"]+)\"")


#: folders that are not the project's own text: environments, caches, build outputs, local runs
SKIP_DIRS = {"runs", "build", "dist", "node_modules", "__pycache__", "out", "demo_out"}


def _project_files(*suffixes: str) -> list[Path]:
    """The project's files ending in ``suffixes`` (hidden folders, ``*.egg-info`` and :data:`SKIP_DIRS` left out)."""
    return sorted(p for p in ROOT.rglob("*") if p.suffix in suffixes and p.is_file()
                  and not any(part.startswith(".") or part in SKIP_DIRS or part.endswith(".egg-info")
                              for part in p.relative_to(ROOT).parts[:-1]))


def _sections(doc: Path) -> list[str]:
    """Heading texts and bold lead-ins of ``doc``, whitespace folded."""
    text = doc.read_text(encoding="utf-8")
    heads = [re.sub(r"^#+\s*", "", ln) for ln in text.splitlines() if ln.startswith("#")]
    bolds = re.findall(r"\*\*([^*]+)\*\*", text)
    return [" ".join(s.split()) for s in heads + bolds]


def test_relative_markdown_links_resolve() -> None:
    broken = []
    for md in _project_files(".md"):
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
    for f in _project_files(".md", ".py"):
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
