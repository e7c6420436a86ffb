"""A small reader for the TCL subset of .nk/.gizmo files (used by the nuke test double and tests).

Handles words, ``{...}`` brace groups (nested, kept raw), ``"..."`` strings with backslash
escapes, ``[...]`` command substitutions kept as text, ``#`` comment lines and newlines as
command separators. Unbalanced braces or quotes raise ValueError, as Nuke refuses such a file.
"""

from __future__ import annotations


class Word(str):
    """A token; ``braced`` is True for a ``{...}`` group (content without the outer braces)."""

    braced: bool = False
    quoted: bool = False


def _word(text: str, braced: bool = False, quoted: bool = False) -> Word:
    w = Word(text)
    w.braced = braced
    w.quoted = quoted
    return w


def split_commands(text: str) -> list[list[Word]]:
    """Split TCL text into commands (lists of words)."""
    commands: list[list[Word]] = []
    current: list[Word] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n" or c == ";":
            if current:
                commands.append(current)
                current = []
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "\\" and i + 1 < n and text[i + 1] == "\n":
            i += 2
        elif c == "#" and not current:
            while i < n and text[i] != "\n":
                i += 1
        elif c == "{":
            depth, j = 1, i + 1
            while j < n and depth:
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise ValueError(f"unbalanced '{{' at offset {i}")
            current.append(_word(text[i + 1: j - 1], braced=True))
            i = j
        elif c == "}":
            raise ValueError(f"unbalanced '}}' at offset {i}")
        elif c == '"':
            j, out = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    nxt = text[j + 1]
                    out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                    j += 2
                    continue
                out.append(text[j])
                j += 1
            if j >= n:
                raise ValueError(f"unterminated string at offset {i}")
            current.append(_word("".join(out), quoted=True))
            i = j + 1
        else:
            j, depth = i, 0
            while j < n and (depth or text[j] not in " \t\r\n;"):
                if text[j] == "[":
                    depth += 1
                elif text[j] == "]" and depth:
                    depth -= 1
                elif text[j] in "{}" and not depth:
                    break
                j += 1
            current.append(_word(text[i:j]))
            i = j
    if current:
        commands.append(current)
    return commands


def parse_user_knob(spec: str) -> dict:
    """Parse the body of ``addUserKnob {ID name l "label" ...}`` into a dict.

    Keys: ``type`` (int), ``name``, ``label``, ``tooltip``, ``items`` (list), ``range`` (tuple),
    ``text`` (the ``T`` argument), ``flags`` (list like ``["+STARTLINE", "+INVISIBLE"]``).
    """
    words = split_commands(spec.replace("\n", " "))
    words_flat = [w for cmd in words for w in cmd]
    if len(words_flat) < 2:
        raise ValueError(f"addUserKnob needs a type and a name: {spec!r}")
    out: dict = {"type": int(words_flat[0]), "name": str(words_flat[1]), "label": None, "tooltip": "",
                 "items": [], "range": None, "text": None, "flags": []}
    i = 2
    while i < len(words_flat):
        w = words_flat[i]
        if w in ("l", "t", "T", "n"):
            if i + 1 >= len(words_flat):
                raise ValueError(f"addUserKnob option {w} without a value: {spec!r}")
            key = {"l": "label", "t": "tooltip", "T": "text", "n": "group"}[w]
            out[key] = str(words_flat[i + 1])
            i += 2
        elif w == "M":
            out["items"] = [str(x) for cmd in split_commands(words_flat[i + 1]) for x in cmd]
            i += 2
        elif w == "R":
            out["range"] = (float(words_flat[i + 1]), float(words_flat[i + 2]))
            i += 3
        elif w.startswith(("+", "-")):
            out["flags"].append(str(w))
            i += 1
        else:
            raise ValueError(f"unknown addUserKnob option {w!r} in {spec!r}")
    return out
