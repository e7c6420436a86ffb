"""Test double of Nuke's ``nuke`` module, written from the documented API (see shared notes hosts.md §4).

Faithful where the plugin depends on it, strict where Nuke is strict:
- knob classes with Nuke's names and constructor shapes (``Enumeration_Knob(name, label, items)``,
  ``Boolean_Knob(name, label, value)``, ``Text_Knob(name, label, text)``,
  ``PyScript_Knob(name, label, command)``); ``Enumeration_Knob.value()`` returns the item string;
  a value of the wrong type raises TypeError, an unknown enumeration item ValueError;
- ``node['missing']`` raises NameError, ``node.knob('missing')`` returns None;
- callbacks registered with ``(call, args=(), kwargs={}, nodeClass='*')``; ``knobChanged`` fires
  on programmatic changes too (Nuke 17.1), with ``thisNode()``/``thisKnob()`` set;
- ``execute`` only runs Write-like nodes with a file name, fires the render callbacks, and must be
  called from the main thread; ``executeInMainThread`` from the main thread raises (it hangs Nuke);
- ``menu``/``toolbar`` exist only with ``GUI`` true (init.py must build no UI);
- ``createNode('SparseMat')`` loads ``SparseMat.gizmo`` from the plugin path with a TCL reader.

Test-only helpers start with an underscore: ``_reset``, ``_process_main_thread``, ``_render_hook``.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import Any

from _tcl import Word, parse_user_knob, split_commands  # tests/doubles is on sys.path

# ---------------------------------------------------------------------------------------------
# module state

GUI = True
env: dict[str, Any] = {"gui": True, "NukeVersionMajor": 15, "NukeVersionMinor": 1}
NUKE_VERSION_MAJOR = 15
NUKE_VERSION_MINOR = 1
rawArgs: list[str] = ["nuke"]

STARTLINE = 0x1000
ENDLINE = 0x2000
INVISIBLE = 0x400
DISABLED = 0x80
NO_ANIMATION = 0x100
DO_NOT_WRITE = 0x200
READ_ONLY = 0x10000000
NO_UNDO = 0x80000
ALWAYS_SAVE = 0x8000000
WRITE_NON_DEFAULT_ONLY = 0x1
TO_SCRIPT = 0x2
TO_VALUE = 0x4
REPLACE = 1

_MAIN_THREAD = threading.main_thread()
_main_queue: list[tuple[Any, tuple, dict, threading.Event | None, list]] = []
_queue_lock = threading.Lock()
_plugin_paths: list[str] = []
_callbacks: dict[str, list[tuple[Any, tuple, dict, str, Any]]] = {}
_context: dict[str, Any] = {"node": None, "knob": None}
_group_stack: list[Any] = []
messages: list[str] = []
executed: list[tuple[str, int]] = []
progress_tasks: list[ProgressTask] = []
_render_hook: Any = None  # callable(write_node, frame) simulating Nuke writing pixels
_menus: dict[str, Menu] = {}


def _is_main() -> bool:
    return threading.current_thread() is _MAIN_THREAD


def _require_main(what: str) -> None:
    if not _is_main():
        raise RuntimeError(f"nuke.{what} must be called from the main thread")


# ---------------------------------------------------------------------------------------------
# knobs


class Knob:
    """Base of every knob (``nuke.Knob``)."""

    _default: Any = ""

    def __init__(self, name: str, label: str | None = None, *rest: Any) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{type(self).__name__}() argument 1 must be a non-empty str")
        if label is not None and not isinstance(label, str):
            raise TypeError(f"{type(self).__name__}() argument 2 must be str")
        self._name = name
        self._label = label if label is not None else name
        self._tooltip = ""
        self._flags = 0
        self._node: Node | None = None
        self._value: Any = self._default
        self._expression: str | None = None
        self._enabled = True

    def Class(self) -> str:
        return type(self).__name__

    def name(self) -> str:
        return self._name

    def label(self) -> str:
        return self._label

    def setLabel(self, label: str) -> None:
        self._label = label

    def node(self) -> Node | None:
        return self._node

    def tooltip(self) -> str:
        return self._tooltip

    def setTooltip(self, tooltip: str) -> None:
        self._tooltip = tooltip

    def setFlag(self, flag: int) -> None:
        self._flags |= int(flag)

    def clearFlag(self, flag: int) -> None:
        self._flags &= ~int(flag)

    def getFlag(self, flag: int) -> bool:
        return bool(self._flags & flag)

    def setVisible(self, visible: bool) -> None:
        if visible:
            self.clearFlag(INVISIBLE)
        else:
            self.setFlag(INVISIBLE)

    def visible(self) -> bool:
        return not self.getFlag(INVISIBLE)

    def setEnabled(self, enabled: bool) -> None:
        self._enabled = bool(enabled)
        if enabled:
            self.clearFlag(DISABLED)
        else:
            self.setFlag(DISABLED)

    def enabled(self) -> bool:
        return self._enabled and not self.getFlag(DISABLED)

    def _coerce(self, value: Any) -> Any:
        return value

    def value(self) -> Any:
        return self._value

    def getValue(self) -> Any:
        return self.value()

    def setValue(self, value: Any, *chan: Any) -> bool:
        new = self._coerce(value)
        changed = new != self._value
        self._value = new
        if self._node is not None and self._node._live:
            _fire_knob_changed(self._node, self)
        return changed

    def fromScript(self, text: str) -> bool:
        if text.startswith("{") and text.endswith("}"):
            self._expression = text.strip("{} ")
            return True
        return self.setValue(self._from_text(text))

    def _from_text(self, text: str) -> Any:
        return text

    def toScript(self) -> str:
        return str(self._value)

    def hasExpression(self) -> bool:
        return self._expression is not None

    def setExpression(self, expression: str) -> bool:
        self._expression = expression
        return True

    def isDefault(self) -> bool:
        return self._value == type(self)._default


class _TextValued(Knob):
    """Knobs whose value is a string given as the third constructor argument (not a Nuke class)."""

    _default = ""

    def __init__(self, name: str, label: str | None = None, text: str = "", *rest: Any) -> None:
        super().__init__(name, label)
        self._value = self._coerce(text)

    def _coerce(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{self.Class()} {self._name}: expected a string, got {type(value).__name__}")
        return value


class String_Knob(_TextValued):
    def evaluate(self) -> str:
        return self._value


class EvalString_Knob(String_Knob):
    pass


class File_Knob(EvalString_Knob):
    def evaluate(self, frame: int | None = None) -> str:
        frame = int(root()["frame"].value()) if frame is None else frame
        return _substitute_frame(self._value, frame)


class Multiline_Eval_String_Knob(EvalString_Knob):
    pass


class Text_Knob(_TextValued):
    pass


class Tab_Knob(Knob):
    _default = 0

    def setValue(self, value: Any, *chan: Any) -> bool:
        raise TypeError("Tab_Knob has no value")


class Array_Knob(Knob):
    _default = 0.0

    def __init__(self, name: str, label: str | None = None, *rest: Any) -> None:
        super().__init__(name, label)
        self._range: tuple[float, float] | None = None

    def setRange(self, f1: float, f2: float) -> None:
        self._range = (float(f1), float(f2))

    def min(self) -> float:
        return self._range[0] if self._range else 0.0

    def max(self) -> float:
        return self._range[1] if self._range else 1.0

    def _coerce(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{self.Class()} {self._name}: expected a number, got {type(value).__name__}")
        return float(value)

    def _from_text(self, text: str) -> Any:
        return float(text)


class Double_Knob(Array_Knob):
    pass


class WH_Knob(Array_Knob):
    pass


class Int_Knob(Array_Knob):
    _default = 0

    def _coerce(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"Int_Knob {self._name}: expected a number, got {type(value).__name__}")
        return int(value)

    def _from_text(self, text: str) -> Any:
        return int(text, 0) if text.lower().startswith("0x") else int(float(text))


class Boolean_Knob(Knob):
    _default = False

    def __init__(self, name: str, label: str | None = None, value: Any = False, *rest: Any) -> None:
        super().__init__(name, label)
        self._value = self._coerce(value)

    def _coerce(self, value: Any) -> bool:
        if not isinstance(value, (bool, int)):
            raise TypeError(f"Boolean_Knob {self._name}: expected a bool, got {type(value).__name__}")
        return bool(value)

    def _from_text(self, text: str) -> Any:
        return text.strip().lower() in ("1", "true", "yes", "on")

    def toScript(self) -> str:
        return "true" if self._value else "false"


class Enumeration_Knob(Knob):
    def __init__(self, name: str, label: str | None, items: list[str] | tuple[str, ...], *rest: Any) -> None:
        super().__init__(name, label)
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise TypeError("Enumeration_Knob items must be a list of strings")
        self._items = list(items)
        self._value = self._items[0] if self._items else ""
        self._default_item = self._value

    def values(self) -> list[str]:
        return list(self._items)

    def setValues(self, items: list[str]) -> None:
        self._items = list(items)

    def _coerce(self, value: Any) -> str:
        if isinstance(value, bool):
            raise TypeError(f"Enumeration_Knob {self._name}: expected an item or an index")
        if isinstance(value, (int, float)):
            index = int(value)
            if not 0 <= index < len(self._items):
                raise ValueError(f"Enumeration_Knob {self._name}: index {index} out of range")
            return self._items[index]
        if not isinstance(value, str):
            raise TypeError(f"Enumeration_Knob {self._name}: expected a string, got {type(value).__name__}")
        if value not in self._items:
            raise ValueError(f"Enumeration_Knob {self._name}: {value!r} is not one of {self._items}")
        return value

    def getValue(self) -> float:
        return float(self._items.index(self._value))

    def isDefault(self) -> bool:
        return self._value == self._default_item


class PyScript_Knob(Knob):
    def __init__(self, name: str, label: str | None = None, command: str | None = None, *rest: Any) -> None:
        super().__init__(name, label)
        self._command = command or ""

    def command(self) -> str:
        return self._command

    def setCommand(self, command: str) -> None:
        self._command = command

    def setValue(self, value: Any, *chan: Any) -> bool:
        self._command = str(value)
        return True

    def value(self) -> str:
        return self._command

    def execute(self) -> None:
        _require_main("PyScript_Knob.execute")
        with _this(self._node, self):
            exec(compile(self._command, f"<{self._name} knob>", "exec"), {"nuke": sys.modules[__name__]})


class Script_Knob(PyScript_Knob):
    def execute(self) -> None:
        """TCL buttons (e.g. Read 'reload'): recorded, no Python."""
        if self._node is not None:
            self._node._executed_buttons.append(self._name)


class Obsolete_Knob(Knob):
    pass


_USER_KNOB_TYPES: dict[int, type[Knob]] = {
    1: String_Knob, 2: File_Knob, 3: Int_Knob, 4: Enumeration_Knob, 6: Boolean_Knob, 7: Double_Knob,
    8: Double_Knob, 20: Tab_Knob, 22: PyScript_Knob, 26: Text_Knob, 43: Multiline_Eval_String_Knob,
}


# ---------------------------------------------------------------------------------------------
# nodes

_COMMON = [("name", String_Knob), ("label", Multiline_Eval_String_Knob), ("xpos", Int_Knob), ("ypos", Int_Knob),
           ("selected", Boolean_Knob), ("disable", Boolean_Knob), ("note_font", String_Knob),
           ("tile_color", Int_Knob), ("hide_input", Boolean_Knob), ("help", String_Knob),
           ("onCreate", Multiline_Eval_String_Knob), ("knobChanged", Multiline_Eval_String_Knob)]

_CLASS_KNOBS: dict[str, list[tuple[str, type[Knob]] | tuple[str, type[Knob], Any]]] = {
    "Read": [("file", File_Knob), ("proxy", File_Knob), ("first", Int_Knob, 1), ("last", Int_Knob, 1),
             ("origfirst", Int_Knob, 1), ("origlast", Int_Knob, 1), ("origset", Boolean_Knob),
             ("frame_mode", Enumeration_Knob, ["expression", "start at", "offset"]), ("frame", String_Knob),
             ("before", Enumeration_Knob, ["hold", "loop", "bounce", "black"]),
             ("after", Enumeration_Knob, ["hold", "loop", "bounce", "black"]),
             ("on_error", Enumeration_Knob, ["error", "black", "checkerboard", "nearest frame"]),
             ("reload", Script_Knob), ("colorspace", String_Knob), ("raw", Boolean_Knob),
             ("premultiplied", Boolean_Knob), ("auto_alpha", Boolean_Knob)],
    "Write": [("file", File_Knob), ("proxy", File_Knob), ("file_type", String_Knob), ("channels", String_Knob),
              ("colorspace", String_Knob), ("raw", Boolean_Knob), ("datatype", String_Knob),
              ("compression", String_Knob), ("use_limit", Boolean_Knob), ("first", Int_Knob, 1),
              ("last", Int_Knob, 1), ("create_directories", Boolean_Knob), ("beforeRender", String_Knob),
              ("afterRender", String_Knob), ("metadata", String_Knob)],
    "Input": [("number", Int_Knob)],
    "Output": [],
    "Switch": [("which", Double_Knob)],
    "Copy": [("from0", String_Knob), ("to0", String_Knob), ("from1", String_Knob), ("to1", String_Knob),
             ("bbox", String_Knob)],
    "Expression": [("channel0", String_Knob), ("expr0", String_Knob), ("channel1", String_Knob),
                   ("expr1", String_Knob), ("channel2", String_Knob), ("expr2", String_Knob),
                   ("channel3", String_Knob), ("expr3", String_Knob)],
    "Premult": [("channels", String_Knob), ("alpha", String_Knob)],
    "Multiply": [("channels", String_Knob), ("value", Double_Knob)],
    "Text2": [("message", Multiline_Eval_String_Knob), ("xjustify", String_Knob), ("yjustify", String_Knob),
              ("global_font_scale", Double_Knob)],
    "Remove": [("operation", Enumeration_Knob, ["remove", "keep"]), ("channels", String_Knob)],
    "Dot": [],
    "NoOp": [],
    "Group": [],
    "Root": [("name", String_Knob), ("first_frame", Int_Knob, 1), ("last_frame", Int_Knob, 100),
             ("frame", Int_Knob, 1), ("proxy", Boolean_Knob), ("fps", Double_Knob, 24.0),
             ("format", String_Knob), ("views", Multiline_Eval_String_Knob, "main #ffffff"),
             # Project Settings > Color (knob names as in saved .nk scripts and Foundry's own flipbook code)
             ("colorManagement", Enumeration_Knob, ["Nuke", "OCIO"]), ("OCIO_config", String_Knob, "nuke-default"),
             ("workingSpaceLUT", String_Knob, "linear")],
}
_DEFAULT_INPUTS = {"Read": 0, "Input": 0, "Root": 0, "Group": 0, "Copy": 2, "Switch": 2}
EXECUTABLE = ("Write", "WriteGeo", "DiskCache", "Precomp")


class Node:
    """A node (``nuke.Node``); Groups and gizmos are :class:`Group`."""

    def __init__(self, cls: str, name: str | None = None) -> None:
        self._class = cls
        self._knobs: dict[str, Knob] = {}
        self._inputs: list[Node | None] = []
        self._parent: Group | None = None
        self._live = False
        self._executed_buttons: list[str] = []
        self._errors: list[str] = []
        for entry in ([] if cls == "Root" else _COMMON) + _CLASS_KNOBS.get(cls, []):
            knob_name, knob_cls = entry[0], entry[1]
            if knob_cls is Enumeration_Knob:
                k: Knob = Enumeration_Knob(knob_name, knob_name, entry[2])  # type: ignore[misc]
            else:
                k = knob_cls(knob_name)
                if len(entry) > 2:
                    k._value = k._coerce(entry[2])
            self._attach(k)
        if name is not None:
            self._knobs["name"]._value = name

    # identity
    def Class(self) -> str:
        return self._class

    def name(self) -> str:
        return self._knobs["name"].value()

    def fullName(self) -> str:
        if self._parent is None or self._parent is _ROOT:
            return self.name()
        return f"{self._parent.fullName()}.{self.name()}"

    def setName(self, name: str, uncollide: bool = True, updateExpressions: bool = False) -> None:
        self._knobs["name"].setValue(name)

    # knobs
    def _attach(self, knob: Knob) -> None:
        knob._node = self
        self._knobs[knob.name()] = knob

    def addKnob(self, knob: Knob) -> None:
        if not isinstance(knob, Knob):
            raise TypeError("addKnob expects a knob")
        if knob._node is not None:
            raise RuntimeError(f"knob {knob.name()} already belongs to a node")
        if knob.name() in self._knobs:
            raise RuntimeError(f"{self.name()} already has a knob called {knob.name()}")
        self._attach(knob)

    def removeKnob(self, knob: Knob) -> None:
        del self._knobs[knob.name()]
        knob._node = None

    def knob(self, name: str | int) -> Knob | None:
        return self._knobs.get(name) if isinstance(name, str) else list(self._knobs.values())[name]

    def knobs(self) -> dict[str, Knob]:
        return dict(self._knobs)

    def allKnobs(self) -> list[Knob]:
        return list(self._knobs.values())

    def __getitem__(self, name: str) -> Knob:
        try:
            return self._knobs[name]
        except KeyError:
            raise NameError(f"knob {name} does not exist") from None

    def writeKnobs(self, flags: int = 0) -> str:
        lines = []
        for k in self._knobs.values():
            if isinstance(k, (Tab_Knob, PyScript_Knob)):
                continue
            if flags & WRITE_NON_DEFAULT_ONLY and k.isDefault() and k._expression is None:
                continue
            lines.append(f"{k.name()} {{{{{k._expression}}}}}" if k._expression else f"{k.name()} {k.toScript()}")
        return "\n".join(lines)

    # graph
    def input(self, i: int) -> Node | None:
        return self._inputs[i] if 0 <= i < len(self._inputs) else None

    def setInput(self, i: int, node: Node | None) -> bool:
        while len(self._inputs) <= i:
            self._inputs.append(None)
        self._inputs[i] = node
        if self._live:
            _fire_knob_changed(self, Knob("inputChange"))
        return True

    def inputs(self) -> int:
        n = len(self._inputs)
        while n and self._inputs[n - 1] is None:
            n -= 1
        return n

    def dependencies(self, what: int = 0) -> list[Node]:
        return [n for n in self._inputs if n is not None]

    def firstFrame(self) -> int:
        return int(self._knobs["first"].value()) if "first" in self._knobs else root().firstFrame()

    def lastFrame(self) -> int:
        return int(self._knobs["last"].value()) if "last" in self._knobs else root().lastFrame()

    def hasError(self) -> bool:
        return bool(self._errors)

    def showControlPanel(self, forceFloat: bool = False) -> None:
        pass

    def hideControlPanel(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{self._class} {self.fullName()}>"


class Group(Node):
    def __init__(self, cls: str = "Group", name: str | None = None) -> None:
        super().__init__(cls, name)
        self._children: list[Node] = []

    def begin(self) -> Group:
        _group_stack.append(self)
        return self

    def end(self) -> None:
        if not _group_stack or _group_stack[-1] is not self:
            raise RuntimeError("Group.end() without a matching begin()")
        _group_stack.pop()

    def __enter__(self) -> Group:
        return self.begin()

    def __exit__(self, *exc: Any) -> None:
        self.end()

    def node(self, name: str) -> Node | None:
        head, _, rest = name.partition(".")
        for child in self._children:
            if child.name() == head:
                if rest:
                    return child.node(rest) if isinstance(child, Group) else None
                return child
        return None

    def nodes(self) -> list[Node]:
        return list(self._children)

    def output(self) -> Node | None:
        return next((c for c in self._children if c.Class() == "Output"), None)

    def run(self, call: Any, *args: Any) -> Any:
        with self:
            return call(*args)

    def _add_child(self, node: Node) -> None:
        node._parent = self
        self._children.append(node)


class Root(Group):
    def __init__(self) -> None:
        super().__init__("Root")
        self._knobs["name"]._value = ""

    def name(self) -> str:
        return "Root"

    def fullName(self) -> str:
        return "root"

    def firstFrame(self) -> int:
        return int(self["first_frame"].value())

    def lastFrame(self) -> int:
        return int(self["last_frame"].value())

    def proxy(self) -> bool:
        return bool(self["proxy"].value())

    def setProxy(self, value: bool) -> None:
        self["proxy"].setValue(bool(value))

    def setFrame(self, frame: int) -> None:
        self["frame"].setValue(int(frame))

    def frame(self) -> int:
        return int(self["frame"].value())


_ROOT = Root()


def root() -> Root:
    return _ROOT


def views() -> list[str]:
    """The script's view names, from Root's ``views`` knob (one ``name #colour`` line a view, as
    ``nukescripts.stereo.setViewsForStereo`` writes it with ``fromScript``)."""
    return [line.split()[0] for line in str(_ROOT["views"].value()).splitlines() if line.strip()]


def _current_group() -> Group:
    return _group_stack[-1] if _group_stack else _ROOT


def thisGroup() -> Group:
    return _current_group()


def _unique_name(group: Group, base: str) -> str:
    base = re.sub(r"\d+$", "", base) or base
    n = 1
    while group.node(f"{base}{n}") is not None:
        n += 1
    return f"{base}{n}"


def _new_node(cls: str, knobs: dict[str, Any] | None = None, parent: Group | None = None) -> Node:
    parent = parent or _current_group()
    if cls not in _CLASS_KNOBS:
        raise RuntimeError(f"{cls}: unknown command")
    node: Node = Group(cls) if cls == "Group" else Node(cls)
    node._knobs["name"]._value = _unique_name(parent, cls)
    parent._add_child(node)
    for key, value in (knobs or {}).items():
        if key not in node._knobs:
            raise NameError(f"{cls} has no knob named {key}")
        node._knobs[key].setValue(value)
    node._live = True
    _fire("onCreates", node)
    return node


class _Nodes:
    """``nuke.nodes.<Class>(**knobs)``: creates a node without UI side effects."""

    def __getattr__(self, cls: str) -> Any:
        return lambda **knobs: _new_node(cls, knobs)


nodes = _Nodes()


def createNode(node: str, knobs: str | None = None, inpanel: bool = True) -> Node:
    gizmo = _find_on_plugin_path(node + ".gizmo")
    if gizmo is not None:
        result: Node = _load_gizmo(gizmo, node)
    else:
        result = _new_node(node, None)
        result._live = False
    if knobs:
        words = [w for cmd in split_commands(knobs) for w in cmd]
        for key, value in zip(words[::2], words[1::2], strict=False):
            result[key].fromScript(str(value))
    result._live = True
    if gizmo is not None:
        _fire("onCreates", result)
    _fire("onUserCreates", result)
    return result


def toNode(name: str) -> Node | None:
    if name in ("root", "Root"):
        return _ROOT
    group = _current_group()
    if name.startswith("root."):
        group, name = _ROOT, name[5:]
    return group.node(name)


def allNodes(filter: str | None = None, group: Group | None = None, recurseGroups: bool = False) -> list[Node]:
    group = group or _current_group()
    out: list[Node] = []
    for child in group.nodes():
        if filter is None or child.Class() == filter:
            out.append(child)
        if recurseGroups and isinstance(child, Group):
            out += allNodes(filter, child, True)
    return out


def delete(node: Node) -> None:
    if node._parent is not None:
        node._parent._children.remove(node)
    _fire("onDestroys", node)


def selectedNode() -> Node:
    raise ValueError("no node selected")


def thisNode() -> Node | None:
    return _context["node"]


def thisKnob() -> Knob | None:
    return _context["knob"]


class _this:
    def __init__(self, node: Node | None, knob: Knob | None) -> None:
        self.node, self.knob = node, knob

    def __enter__(self) -> None:
        self.saved = dict(_context)
        _context["node"], _context["knob"] = self.node, self.knob

    def __exit__(self, *exc: Any) -> None:
        _context.update(self.saved)


def scriptName() -> str:
    name = _ROOT["name"].value()
    if not name:
        raise RuntimeError("no script name")
    return name


def frame() -> int:
    return _ROOT.frame()


def _substitute_frame(pattern: str, frame: int) -> str:
    m = re.search(r"%0?(\d*)d", pattern)
    if m:
        return pattern % frame
    m = re.search(r"#+", pattern)
    if m:
        return pattern[: m.start()] + str(frame).zfill(len(m.group(0))) + pattern[m.end():]
    return pattern


def filename(node: Node, what: int = 0) -> str:
    value = node["file"].value()
    return _substitute_frame(value, frame()) if what == REPLACE else value


# ---------------------------------------------------------------------------------------------
# gizmo loading (TCL subset)


def pluginAddPath(args: str | list[str], addToSysPath: bool = True) -> None:
    for path in [args] if isinstance(args, str) else args:
        _plugin_paths.insert(0, path)
        if addToSysPath and path not in sys.path:
            sys.path.insert(0, path)


def pluginAppendPath(args: str | list[str], addToSysPath: bool = True) -> None:
    for path in [args] if isinstance(args, str) else args:
        _plugin_paths.append(path)
        if addToSysPath and path not in sys.path:
            sys.path.append(path)


def pluginPath() -> list[str]:
    return list(_plugin_paths)


def _find_on_plugin_path(filename_: str) -> str | None:
    for folder in _plugin_paths:
        candidate = os.path.join(folder, filename_)
        if os.path.isfile(candidate):
            return candidate
    return None


def _apply_knob_line(node: Node, words: list[Word]) -> None:
    name, values = str(words[0]), words[1:]
    if name == "inputs":
        node._declared_inputs = int(values[0])  # type: ignore[attr-defined]
        return
    if name == "addUserKnob":
        spec = parse_user_knob(values[0])
        cls = _USER_KNOB_TYPES.get(spec["type"])
        if cls is None:
            raise ValueError(f"addUserKnob type {spec['type']} not supported by the double")
        label = spec["label"] if spec["label"] is not None else spec["name"]
        if cls is Enumeration_Knob:
            knob: Knob = Enumeration_Knob(spec["name"], label, spec["items"])
        elif cls is PyScript_Knob:
            knob = PyScript_Knob(spec["name"], label, spec["text"] or "")
        elif cls is Text_Knob:
            knob = Text_Knob(spec["name"], label, spec["text"] or "")
        else:
            knob = cls(spec["name"], label)
        if spec["range"] is not None and isinstance(knob, Array_Knob):
            knob.setRange(*spec["range"])
        knob.setTooltip(spec["tooltip"])
        for flag in spec["flags"]:
            value = {"STARTLINE": STARTLINE, "INVISIBLE": INVISIBLE, "DISABLED": DISABLED,
                     "DO_NOT_WRITE": DO_NOT_WRITE, "READ_ONLY": READ_ONLY, "NO_ANIMATION": NO_ANIMATION}.get(flag[1:])
            if value is None:
                raise ValueError(f"unknown knob flag {flag}")
            (knob.setFlag if flag[0] == "+" else knob.clearFlag)(value)
        node.addKnob(knob)
        return
    if name not in node._knobs:
        raise NameError(f"{node.Class()} {node.name()}: no knob named {name}")
    if len(values) != 1:
        raise ValueError(f"{node.name()}.{name}: expected one value, got {len(values)}")
    value = values[0]
    knob = node._knobs[name]
    if value.braced:
        text = str(value)
        if text.startswith("{") and text.endswith("}"):
            knob._expression = text[1:-1].strip()
            return
        if isinstance(knob, (String_Knob, Text_Knob)):
            knob._value = text
            return
    knob._value = knob._coerce(knob._from_text(str(value))) if not isinstance(knob, PyScript_Knob) else None
    if isinstance(knob, PyScript_Knob):
        knob._command = str(value)


def _load_gizmo(path: str, cls: str) -> Group:
    with open(path, encoding="utf-8") as handle:
        commands = split_commands(handle.read())
    group: Group | None = None
    parent = _current_group()
    stack: list[Node | None] = []
    variables: dict[str, Node | None] = {}
    in_group = False
    for cmd in commands:
        head = str(cmd[0])
        if head in ("version", "add_layer", "define_window_layout_xml"):
            continue
        if head == "set" and len(cmd) == 3 and cmd[2] == "[stack 0]":
            variables[str(cmd[1])] = stack[-1] if stack else None
            continue
        if head == "push":
            arg = str(cmd[1])
            stack.append(None if arg == "0" else variables[arg.lstrip("$")])
            continue
        if head == "end_group":
            in_group = False
            continue
        if len(cmd) != 2 or not cmd[1].braced:
            raise ValueError(f"{path}: cannot read command {' '.join(cmd)!r}")
        body = split_commands(cmd[1])
        if group is None:
            if head not in ("Gizmo", "Group"):
                raise ValueError(f"{path}: a gizmo starts with Gizmo or Group, not {head}")
            # A .gizmo holding a Group (not a Gizmo) creates a plain Group node, self-contained in scripts.
            group = Group("Group" if head == "Group" else cls)
            group._knobs["name"]._value = _unique_name(parent, cls)
            parent._add_child(group)
            for line in body:
                _apply_knob_line(group, line)
            in_group = True
            continue
        if not in_group:
            raise ValueError(f"{path}: node {head} after end_group")
        if head not in _CLASS_KNOBS:
            raise RuntimeError(f"{path}: {head}: unknown command")
        node = Group(head) if head == "Group" else Node(head)
        group._add_child(node)
        for line in body:
            _apply_knob_line(node, line)
        n_inputs = getattr(node, "_declared_inputs", _DEFAULT_INPUTS.get(head, 1))
        for _ in range(n_inputs):
            node._inputs.append(stack.pop() if stack else None)
        stack.append(node)
        node._live = True
    if group is None:
        raise ValueError(f"{path}: empty gizmo")
    if in_group:
        raise ValueError(f"{path}: missing end_group")
    names = [c.name() for c in group.nodes()]
    if len(names) != len(set(names)):
        raise ValueError(f"{path}: duplicate node names inside the group")
    return group


# ---------------------------------------------------------------------------------------------
# callbacks

_REGISTRIES = ("knobChangeds", "onCreates", "onUserCreates", "onDestroys", "onScriptLoads", "onScriptSaves",
               "onScriptCloses", "beforeRenders", "beforeFrameRenders", "afterFrameRenders", "afterRenders",
               "updateUIs", "autolabels", "renderProgresses")


def _add(registry: str, call: Any, args: tuple = (), kwargs: dict | None = None, nodeClass: str = "*",
         node: Any = None) -> None:
    if not callable(call):
        raise TypeError("callback must be callable")
    if not isinstance(args, tuple):
        args = (args,)
    _callbacks.setdefault(registry, []).append((call, args, dict(kwargs or {}), nodeClass, node))


def _remove(registry: str, call: Any, args: tuple = (), kwargs: dict | None = None, nodeClass: str = "*") -> None:
    entries = _callbacks.get(registry, [])
    for entry in list(entries):
        if entry[0] == call and entry[3] == nodeClass:
            entries.remove(entry)
            return
    raise ValueError("callback not registered")


def addKnobChanged(call: Any, args: tuple = (), kwargs: dict | None = None, nodeClass: str = "*",
                   node: Any = None) -> None:
    _add("knobChangeds", call, args, kwargs, nodeClass, node)


def removeKnobChanged(call: Any, args: tuple = (), kwargs: dict | None = None, nodeClass: str = "*") -> None:
    _remove("knobChangeds", call, args, kwargs, nodeClass)


def _make_adders() -> None:
    module = sys.modules[__name__]
    for registry in _REGISTRIES:
        if registry == "knobChangeds":
            continue
        stem = registry[:-1]
        pub = stem[0].upper() + stem[1:]

        def adder(call: Any, args: tuple = (), kwargs: dict | None = None, nodeClass: str | None = None,
                  _registry: str = registry) -> None:
            default = "Write" if "Render" in _registry else ("Root" if "Script" in _registry else "*")
            _add(_registry, call, args, kwargs, nodeClass or default)

        def remover(call: Any, args: tuple = (), kwargs: dict | None = None, nodeClass: str | None = None,
                    _registry: str = registry) -> None:
            default = "Write" if "Render" in _registry else ("Root" if "Script" in _registry else "*")
            _remove(_registry, call, args, kwargs, nodeClass or default)

        setattr(module, f"add{pub}", adder)
        setattr(module, f"remove{pub}", remover)


_make_adders()


def _fire(registry: str, node: Node, knob: Knob | None = None) -> None:
    for call, args, kwargs, node_class, only in list(_callbacks.get(registry, [])):
        if node_class not in ("*", node.Class()):
            continue
        if only is not None and only is not node:
            continue
        with _this(node, knob):
            call(*args, **kwargs)


def _fire_knob_changed(node: Node, knob: Knob) -> None:
    _fire("knobChangeds", node, knob)


# ---------------------------------------------------------------------------------------------
# execution, progress, threads, UI


def execute(nameOrNode: str | Node, start: Any = None, end: int | None = None, incr: int = 1,
            views: Any = None, continueOnError: bool = False) -> None:
    _require_main("execute")
    node = toNode(nameOrNode) if isinstance(nameOrNode, str) else nameOrNode
    if node is None:
        raise ValueError(f"no such node {nameOrNode}")
    if node.Class() not in EXECUTABLE:
        raise RuntimeError(f"{node.name()} cannot be executed")
    if isinstance(start, FrameRanges):
        frames = start.toFrameList()
    else:
        if start is None or end is None:
            raise TypeError("execute() needs start and end frames")
        frames = list(range(int(start), int(end) + 1, int(incr)))
    if node["disable"].value():
        return
    if not node["file"].value():
        raise RuntimeError(f"{node.name()}: no file name set")
    _fire("beforeRenders", node)
    for f in frames:
        _ROOT["frame"]._value = f
        _fire("beforeFrameRenders", node)
        if _render_hook is not None:
            _render_hook(node, f)
        executed.append((node.fullName(), f))
        _fire("afterFrameRenders", node)
    _fire("afterRenders", node)


class FrameRange:
    def __init__(self, first: int, last: int, increment: int = 1) -> None:
        self._first, self._last, self._incr = int(first), int(last), int(increment)

    def first(self) -> int:
        return self._first

    def last(self) -> int:
        return self._last

    def increment(self) -> int:
        return self._incr


class FrameRanges:
    def __init__(self, ranges: Any = None) -> None:
        self._frames: list[int] = []
        if isinstance(ranges, str):
            for part in ranges.split():
                a, _, b = part.partition("-")
                self._frames += list(range(int(a), int(b or a) + 1))
        elif ranges:
            for r in ranges:
                self._frames += list(range(r.first(), r.last() + 1, r.increment()))

    def toFrameList(self) -> list[int]:
        return sorted(set(self._frames))


class ProgressTask:
    def __init__(self, name: str, *args: Any) -> None:
        if not isinstance(name, str):
            raise TypeError("ProgressTask name must be a string")
        self.name = name
        self.progress: list[int] = []
        self.messages: list[str] = []
        self._cancelled = threading.Event()
        progress_tasks.append(self)

    def setProgress(self, value: int) -> None:
        _require_main("ProgressTask.setProgress")
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("setProgress expects an int")
        self.progress.append(value)

    def setMessage(self, message: str) -> None:
        _require_main("ProgressTask.setMessage")
        if not isinstance(message, str):
            raise TypeError("setMessage expects a string")
        self.messages.append(message)

    def isCancelled(self) -> bool:
        return self._cancelled.is_set()

    def _cancel(self) -> None:
        """Test helper: the artist presses the progress bar's cancel button."""
        self._cancelled.set()


def executeInMainThread(call: Any, args: Any = (), kwargs: dict | None = None) -> None:
    if _is_main():
        raise RuntimeError("executeInMainThread called from the main thread: this hangs Nuke")
    if not isinstance(args, tuple):
        args = (args,)
    with _queue_lock:
        _main_queue.append((call, args, dict(kwargs or {}), None, []))


def executeInMainThreadWithResult(call: Any, args: Any = (), kwargs: dict | None = None) -> Any:
    if _is_main():
        raise RuntimeError("executeInMainThreadWithResult called from the main thread: this hangs Nuke")
    if not isinstance(args, tuple):
        args = (args,)
    done = threading.Event()
    box: list = []
    with _queue_lock:
        _main_queue.append((call, args, dict(kwargs or {}), done, box))
    done.wait()
    return box[0] if box else None


def _process_main_thread() -> int:
    """Test helper: run the calls queued for the main thread (what Nuke's event loop does)."""
    _require_main("_process_main_thread")
    count = 0
    while True:
        with _queue_lock:
            if not _main_queue:
                return count
            call, args, kwargs, done, box = _main_queue.pop(0)
        try:
            box.append(call(*args, **kwargs))
        finally:
            if done is not None:
                done.set()
        count += 1


def message(prompt: str) -> None:
    _require_main("message")
    messages.append(str(prompt))


def ask(prompt: str) -> bool:
    _require_main("ask")
    messages.append(str(prompt))
    return True


def getInput(prompt: str, default: str = "") -> str:
    return default


def tprint(*values: Any, **kwargs: Any) -> None:
    print(*values, **kwargs)


def warning(text: str) -> None:
    messages.append("warning: " + str(text))


def critical(text: str) -> None:
    messages.append("critical: " + str(text))


class Menu:
    def __init__(self, name: str) -> None:
        self._name = name
        self._items: list[Any] = []
        self.icon: str | None = None

    def name(self) -> str:
        return self._name

    def addMenu(self, name: str, icon: str | None = None, tooltip: str | None = None, index: int | None = None) -> Menu:
        existing = self.findItem(name)
        if isinstance(existing, Menu):
            return existing
        menu_ = Menu(name)
        menu_.icon = icon
        self._items.append(menu_)
        return menu_

    def addCommand(self, name: str, command: Any = None, shortcut: str | None = None, icon: str | None = None,
                   tooltip: str | None = None, index: int | None = None, readonly: bool | None = None,
                   shortcutContext: int | None = None, tag: int | None = None, tagTarget: int | None = None,
                   nodeClass: str = "") -> MenuItem:
        item = MenuItem(name, command if command is not None else f"nuke.createNode('{name}')", icon, tooltip)
        self._items.append(item)
        return item

    def findItem(self, name: str) -> Any:
        head, _, rest = name.partition("/")
        for item in self._items:
            if item.name() == head:
                return item.findItem(rest) if rest and isinstance(item, Menu) else item
        return None

    def items(self) -> list[Any]:
        return list(self._items)


class MenuItem:
    def __init__(self, name: str, command: Any, icon: str | None, tooltip: str | None) -> None:
        self._name, self.command, self.icon, self.tooltip = name, command, icon, tooltip

    def name(self) -> str:
        return self._name

    def invoke(self) -> Any:
        if callable(self.command):
            return self.command()
        exec(self.command, {"nuke": sys.modules[__name__]})
        return None


def menu(name: str) -> Menu:
    if not GUI:
        raise RuntimeError("nuke.menu is not available without the GUI")
    return _menus.setdefault(name, Menu(name))


def toolbar(name: str, create: bool = True) -> Menu:
    if not GUI:
        raise RuntimeError("nuke.toolbar is not available without the GUI")
    return _menus.setdefault(name, Menu(name))


# ---------------------------------------------------------------------------------------------
# test helpers


def _reset(gui: bool = True) -> None:
    """Start a fresh session (new root, no callbacks, no menus)."""
    global GUI, _ROOT, _render_hook, rawArgs
    GUI = gui
    env["gui"] = gui
    _ROOT = Root()
    _group_stack.clear()
    _callbacks.clear()
    _plugin_paths.clear()
    _menus.clear()
    messages.clear()
    executed.clear()
    progress_tasks.clear()
    _main_queue.clear()
    _context.update(node=None, knob=None)
    _render_hook = None
    rawArgs = ["nuke"]
