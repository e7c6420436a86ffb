"""The SparseMat panel inside Nuke: a dockable pane that follows the selected SparseMat node's knobs.

Registered from ``nuke_plugin/menu.py`` with :func:`register` (GUI sessions only) through
``nukescripts.panels.registerWidgetAsPanel``; it then appears under Windows ▸ Custom and in every
pane's content menu, and can be docked beside the Properties bin. The panel shows the same knob
widgets as ``sparsemat ui`` (generated from :mod:`sparsemat.settings`), reads the node's knobs
through the host-free mapping :func:`sparsemat_host.knobs.settings_from_values`, and writes edits
back to the node's knobs, so the node stays the one place where values live. The node's own
adapter renders; the panel shows its status line (active share, time, cascade levels).

Only Nuke's GUI imports this module (it needs PySide6, which Nuke 16 ships).
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget
from sparsemat.errors import SettingsError

from sparsemat_ui.knob_panel import KnobPanel

PANEL_ID = "com.sparsemat.panel"
PANEL_TITLE = "SparseMat"
POLL_MS = 250


def _nuke() -> Any:
    import nuke

    return nuke


def register() -> bool:
    """Register the panel with Nuke's window manager; False outside the GUI or without nukescripts."""
    nuke = _nuke()
    if not getattr(nuke, "GUI", False):
        return False
    try:
        from nukescripts import panels
    except ImportError:
        return False
    panels.registerWidgetAsPanel(f"{__name__}.SparseMatPanel", PANEL_TITLE, PANEL_ID)
    return True


def is_sparsemat(node: Any) -> bool:
    """True for a SparseMat node (gizmo or converted group): it carries the marker knob."""
    from sparsemat_host import knobs as K

    return node is not None and node.knob(K.MARKER_KNOB) is not None


def selected_sparsemat() -> Any:
    """The first selected SparseMat node, or None."""
    nuke = _nuke()
    try:
        nodes = list(nuke.selectedNodes())
    except AttributeError:  # minimal hosts: scan the selection knobs
        nodes = [n for n in nuke.allNodes() if n.knob("selected") is not None and n["selected"].value()]
    except ValueError:
        nodes = []
    return next((n for n in nodes if is_sparsemat(n)), None)


def node_values(node: Any) -> dict[str, Any]:
    """The node's engine and output knob values as the settings hold them (``onnx:PATH``, model path)."""
    from sparsemat_host import knobs as K

    raw = {k.name: node[k.name].value() for k in K.NODE_KNOBS
           if k.kind not in ("tab", "button", "text") and node.knob(k.name) is not None}
    settings, out = K.settings_from_values(raw)
    return {**settings.to_dict(), **vars(out)}


def write_knob(node: Any, name: str, value: Any) -> None:
    """Set the node knob behind engine/output setting ``name`` (free-form prior/model via the file knobs)."""
    from sparsemat_host import knobs as K

    if name == "prior" and isinstance(value, str) and value.startswith("onnx:"):
        node["onnx_file"].setValue(value[len("onnx:"):])
        node["prior"].setValue(K.PRIOR_ONNX_ITEM)
        return
    if name == "model" and isinstance(value, str) and value not in K.KNOBS_BY_NAME["model"].items:
        node["model_file"].setValue(value)
        node["model"].setValue(K.MODEL_FILE_ITEM)
    else:
        node[name].setValue(value)
    # Before Nuke 17.1 knobChanged does not fire for programmatic changes: apply the edit's effects here
    # (visibility, the cache key the node shows), as an edit in the Properties panel would.
    with contextlib.suppress(ImportError):
        from sparsemat_nuke import node as sm_node

        sm_node.knob_edited(node, name)


#: Live panels. Nuke holds one knobChanged callback for all of them (a module function, never a
#: bound method), so a closed pane leaves no callback behind pointing at a deleted widget.
_PANELS: weakref.WeakSet[SparseMatPanel] = weakref.WeakSet()


def _dispatch_knob_changed() -> None:
    """The knobChanged callback: hands the change to every live panel, forgetting deleted ones."""
    for panel in list(_PANELS):
        try:
            panel._on_node_changed()
        except RuntimeError:  # "Internal C++ object already deleted": the pane was closed
            _PANELS.discard(panel)


class SparseMatPanel(QWidget):
    """Knobs of the selected SparseMat node, live in both directions.

    Attributes:
        node: the node followed, or None.
        knobs: the :class:`~sparsemat_ui.knob_panel.KnobPanel`.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.node: Any = None
        self._writing = False
        col = QVBoxLayout(self)
        head = QHBoxLayout()
        self.title = QLabel("Select a SparseMat node")
        self.follow_box = QCheckBox("Follow selection")
        self.follow_box.setChecked(True)
        self.follow_box.setToolTip("Show the knobs of the selected SparseMat node. Turn off to keep this node.")
        head.addWidget(self.title, 1)
        head.addWidget(self.follow_box)
        col.addLayout(head)
        self.knobs = KnobPanel()
        self.knobs.setEnabled(False)
        self.knobs.changed.connect(self._on_panel_changed)
        scroll = QScrollArea()
        scroll.setWidget(self.knobs)
        scroll.setWidgetResizable(True)
        col.addWidget(scroll, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #ff6b6b;")
        col.addWidget(self.status)
        col.addWidget(self.error)
        nuke = _nuke()
        _PANELS.add(self)
        if hasattr(nuke, "addKnobChanged"):  # exactly one registration, however many panels were opened
            with contextlib.suppress(ValueError):
                nuke.removeKnobChanged(_dispatch_knob_changed, nodeClass="Group")
            nuke.addKnobChanged(_dispatch_knob_changed, nodeClass="Group")
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll_selection)
        self.timer.start()
        self.poll_selection()

    # ------------------------------------------------------------------ following
    def poll_selection(self) -> None:
        """Follow the selected SparseMat node (when *Follow selection* is on)."""
        if not self.follow_box.isChecked():
            return
        node = selected_sparsemat()
        if node is not None and node is not self.node:
            self.follow(node)

    def follow(self, node: Any) -> None:
        """Show ``node``'s knobs (None: nothing to show)."""
        self.node = node
        self.knobs.setEnabled(node is not None)
        self.title.setText(f"Following {node.name()}" if node is not None else "Select a SparseMat node")
        self.refresh()

    def refresh(self) -> None:
        """Re-read the followed node's knobs into the panel."""
        if self.node is None:
            return
        try:
            values = node_values(self.node)
        except SettingsError as exc:
            self.error.setText(str(exc))
            return
        self.error.setText("")
        self.knobs.set_values(values, emit=False)
        status = self.node.knob("status")
        self.status.setText(str(status.value()) if status is not None else "")

    def _on_node_changed(self) -> None:
        """Nuke's knobChanged callback: a knob of some group changed."""
        if self._writing or self.node is None:
            return
        nuke = _nuke()
        if nuke.thisNode() is self.node:
            self.refresh()

    # ------------------------------------------------------------------ editing
    def _on_panel_changed(self, name: str) -> None:
        if self.node is None:
            return
        value = self.knobs.values()[name]
        self._writing = True
        try:
            write_knob(self.node, name, value)
            self.error.setText("")
        except (SettingsError, ValueError, TypeError) as exc:
            self.error.setText(f"{name}: {exc}")
        finally:
            self._writing = False
        status = self.node.knob("status")
        self.status.setText(str(status.value()) if status is not None else "")

    def close_panel(self) -> None:
        """Stop following the selection and knob changes."""
        self.timer.stop()
        _PANELS.discard(self)

    def hideEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        """Pause polling while the pane is hidden."""
        self.timer.stop()
        super().hideEvent(event)

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        """Resume polling when the pane is shown."""
        self.timer.start()
        self.poll_selection()
        super().showEvent(event)
