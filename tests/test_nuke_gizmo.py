"""SparseMat.gizmo: well-formed TCL, generated from the settings, and consistent with the Python adapter."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "doubles"))
from _tcl import parse_user_knob, split_commands  # noqa: E402
from harness import REPO  # noqa: E402
from sparsemat_host import knobs as K  # noqa: E402

GIZMO = REPO / "gizmos" / "SparseMat.gizmo"


def _parse() -> tuple[dict[str, dict], dict[str, str], list[str]]:
    """(user knobs by name, inner node name → class, every {{expression}} and TCL value text)."""
    commands = split_commands(GIZMO.read_text(encoding="utf-8"))
    knobs: dict[str, dict] = {}
    inner: dict[str, str] = {}
    texts: list[str] = []
    group_seen = False
    for cmd in commands:
        if len(cmd) == 2 and cmd[1].braced and cmd[0] not in ("add_layer",):
            body = split_commands(cmd[1])
            if not group_seen:
                assert cmd[0] == "Group"
                group_seen = True
                for line in body:
                    if line[0] == "addUserKnob":
                        spec = parse_user_knob(line[1])
                        knobs[spec["name"]] = spec
                continue
            name = next(str(line[1]) for line in body if line[0] == "name")
            inner[name] = str(cmd[0])
            texts += [str(w) for line in body for w in line[1:]]
    return knobs, inner, texts


def test_braces_and_quotes_balance() -> None:
    text = GIZMO.read_text(encoding="utf-8")
    split_commands(text)  # raises on an unbalanced brace or quote
    unescaped = re.sub(r"\\.", "", text)
    assert unescaped.count("{") == unescaped.count("}")
    assert text.rstrip().endswith("end_group")


def test_committed_gizmo_matches_the_generator() -> None:
    result = subprocess.run([sys.executable, str(REPO / "gizmos" / "make_gizmo.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_knob_exists_with_the_same_name_and_type() -> None:
    knobs, _, _ = _parse()
    assert list(knobs) == [k.name for k in K.NODE_KNOBS]
    for spec in K.NODE_KNOBS:
        assert knobs[spec.name]["type"] == spec.nuke_type, spec.name
        if spec.kind == "enum":
            assert knobs[spec.name]["items"] == list(spec.items)


def test_knobs_read_by_the_python_code_exist_in_the_gizmo() -> None:
    knobs, inner, _ = _parse()
    sources = [REPO / "nuke_plugin" / "sparsemat_nuke" / n for n in ("node.py", "farm.py", "precompute.py")]
    read = set()
    for path in sources:
        text = path.read_text(encoding="utf-8")
        read |= set(re.findall(r'_knob\(\w+, "(\w+)"\)', text))
        read |= set(re.findall(r'node\["(\w+)"\]', text))
        for const in re.findall(r"_inner\(\w+(?:\.\w+)?, K\.(\w+)\)", text):
            assert getattr(K, const) in inner, const
    assert read, "no knob reads found: the pattern is stale"
    for name in read:
        assert name in knobs, f"the Python code reads knob {name!r}, which the gizmo lacks"
    for name in K.INTERNAL_NODES:
        assert name in inner, name
    assert inner[K.SOURCE_INPUT] == "Input" and inner[K.MATTE_INPUT] == "Input"
    assert inner[K.READ_RESULT] == "Read" and inner[K.WRITE_SOURCE] == inner[K.WRITE_MATTE] == "Write"


def test_expressions_reference_existing_nodes_and_knobs() -> None:
    knobs, inner, texts = _parse()
    refs = 0
    for text in texts:
        for node_name in re.findall(r"filename (\w+)", text):
            assert node_name in inner, node_name
            refs += 1
        for node_name, knob in re.findall(r"\b(parent|[A-Z]\w+)\.(\w+)", text):
            if node_name == "parent":
                assert knob in knobs, knob
                refs += 1
    assert refs >= 3
